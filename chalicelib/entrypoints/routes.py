"""The REST API (DESIGN.md 'REST API'). Routes parse input, call the service layer, shape output."""
from __future__ import annotations

from chalice import Chalice

from chalicelib.entrypoints import bootstrap, pages
from chalicelib.entrypoints.http import (error_status, form, html_response, int_param, json_body,
                                         json_errors, json_response)
from chalicelib.errors import BadRequest
from chalicelib.service import decisions, queries, rollback as rollbacks
from chalicelib.service.views import deployment_json

FORM = ["application/x-www-form-urlencoded"]


def rollback_request(body: dict) -> tuple[str, str]:
    """``{"to": "previous" | "<deployment id>", "reason": "..."}``: nothing implicit, nothing extra
    (an empty or misspelt body must not roll production back)."""
    unknown = sorted(set(body) - {"to", "reason"})
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; send "
                         '{"to": "previous" | "<deployment id>", "reason": "..."}',
                         code="bad_rollback")
    to, reason = body.get("to"), body.get("reason", "")
    if not isinstance(to, str) or not to:
        raise BadRequest("'to' is required: \"previous\" or a deployment id", code="bad_rollback")
    if not isinstance(reason, str) or len(reason) > 500:
        raise BadRequest("'reason' must be a string of at most 500 characters",
                         code="bad_rollback")
    return to, reason


def register(app: Chalice, iam_authorizer) -> None:
    @app.route("/health")
    def health():
        return {"ok": True}

    @app.route("/deployments")
    @json_errors
    def list_deployments():
        params = app.current_request.query_params or {}
        limit = int_param(params, "limit", 50, 1, 200)
        found = queries.list_deployments(bootstrap.deps(), params.get("service"),
                                         params.get("state"), limit)
        return json_response({"deployments": found})

    @app.route("/deployments/{dep_id}")
    @json_errors
    def get_deployment(dep_id):
        return json_response(queries.get_deployment(bootstrap.deps(), dep_id))

    @app.route("/services")
    @json_errors
    def list_services():
        deps = bootstrap.deps()
        return json_response({"services": [queries.service_status(deps, s)
                                           for s in deps.config.services]})

    @app.route("/services/{name}")
    @json_errors
    def get_service(name):
        deps = bootstrap.deps()
        return json_response(queries.service_status(deps, deps.service(name)))

    @app.route("/services/{name}/rollback", methods=["POST"], authorizer=iam_authorizer,
               content_types=["application/json", "application/x-www-form-urlencoded"])
    @json_errors
    def rollback(name):
        """A body is required and read as JSON whatever curl's default Content-Type says."""
        request = app.current_request
        to, reason = rollback_request(json_body(request.raw_body))
        identity = (request.context.get("identity") or {}).get("userArn") or "local"
        deps = bootstrap.deps()
        dep = rollbacks.rollback(deps, name, to, reason, f"iam:{identity}")
        return json_response(deployment_json(dep, deps.config.service(dep.service)), 202)

    @app.route("/approvals/{dep_id}", methods=["GET"])
    def approval_page(dep_id):
        """Show what would ship and a form that POSTs the decision. Never changes anything."""
        token = (app.current_request.query_params or {}).get("token", "")
        try:
            deps = bootstrap.deps()
            claims = decisions.verify_link(deps, dep_id, token)
            view = queries.get_deployment(deps, dep_id)
            dep = deps.load(dep_id)
            if claims.nonce in dep.used_tokens:
                return html_response(pages.result_page(
                    "This link was already used", "You have already decided with this link.",
                    view), 409)
            if view["state"] != "PENDING_APPROVAL":
                return html_response(pages.result_page(
                    "Nothing to decide", f"This deployment is {view['state']}.", view), 409)
            # A relative action posts back to /approvals/{id} behind any API stage prefix.
            return html_response(pages.confirm_page(view, token, claims.identity, dep_id))
        except Exception as exc:
            status, _, message = error_status(exc)
            return html_response(pages.error_page(status, message), status)

    @app.route("/approvals/{dep_id}", methods=["POST"], content_types=FORM)
    def approval_decide(dep_id):
        """Decide with a signed link: the token names the approver; each works once."""
        try:
            fields = form(app.current_request.raw_body)
            deps = bootstrap.deps()
            claims = decisions.verify_link(deps, dep_id, fields.get("token", ""))
            outcome = decisions.decide(
                deps, dep_id, identity=claims.identity, via="link",
                decision=fields.get("decision", ""), comment=fields.get("comment", ""),
                link_nonce=claims.nonce)
            view = deployment_json(outcome.deployment,
                                   deps.config.service(outcome.deployment.service))
            return html_response(pages.result_page(outcome.message.split(".")[0],
                                                   outcome.message, view))
        except Exception as exc:
            status, _, message = error_status(exc)
            return html_response(pages.error_page(status, message), status)

