"""The REST API (DESIGN.md 'REST API'). Routes parse input, call the service layer, shape output.

Who gets in: the JSON API (deployments, services, rollback) is IAM, checked by API Gateway
(SigV4) before the Lambda runs; ``/health`` is open; the approval pages take an approver's signed
link; a deployment's read-only page (``/deployments/{id}/page?view=T``) takes a view token bound
to that deployment, which Slack's "Review in browser" button and GitHub's status link carry. API
Gateway allows one authorizer per route, so the page a browser opens without AWS credentials has a
path of its own; ``/deployments/{id}`` itself is IAM (JSON, or HTML for a signed client that asks).
"""
from __future__ import annotations

from urllib.parse import quote

from chalice import Chalice, Response

from chalicelib.domain.model import State
from chalicelib.entrypoints import bootstrap
from chalicelib.entrypoints.http import (error_status, form, html_response, int_param, json_body,
                                         json_errors, json_response)
from chalicelib.entrypoints.lazy import LazyModule
from chalicelib.errors import BadRequest, Conflict, Forbidden
from chalicelib.service.deps import Deps

# What the handlers call, imported by the first request that needs it (entrypoints/lazy.py): every
# Lambda function imports this module to register the routes, few of them serve a request.
approval = LazyModule("chalicelib.domain.approval")
pages = LazyModule("chalicelib.entrypoints.pages")
deployment_pages = LazyModule("chalicelib.entrypoints.deployment_page")
service_pages = LazyModule("chalicelib.entrypoints.service_page")
decisions = LazyModule("chalicelib.service.decisions")
dora = LazyModule("chalicelib.service.dora")
freezes = LazyModule("chalicelib.service.freezes")
promotions = LazyModule("chalicelib.service.promote")
queries = LazyModule("chalicelib.service.queries")
rollbacks = LazyModule("chalicelib.service.rollback")
views = LazyModule("chalicelib.service.views")

FORM = ["application/x-www-form-urlencoded"]


def prefers_html(accept: str | None) -> bool:
    """Does this ``Accept`` header rank ``text/html`` above JSON? Browsers send
    ``text/html,…,*/*;q=0.8``: yes. No header, ``*/*``, ``application/json`` or a tie: no, so API
    clients keep the JSON contract. Each type takes the q of its most specific range."""
    ranges: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media:
            ranges.setdefault(media.lower(), q)

    def quality(kind: str, sub: str) -> float:
        return next((ranges[k] for k in (f"{kind}/{sub}", f"{kind}/*", "*/*") if k in ranges), 0.0)

    html = quality("text", "html")
    return html > 0 and html > quality("application", "json")


def _vary(response: Response) -> Response:
    """One URL, two representations: caches must key on Accept (headers copied, never shared)."""
    response.headers = {**response.headers, "Vary": "Accept"}
    return response


@json_errors
def _deployment_as_json(dep_id: str) -> Response:
    return json_response(queries.get_deployment(bootstrap.deps(), dep_id))


def _page_links(deps: Deps, prefix: str):
    """Links to other deployments' read-only pages, each with its own view token."""
    return lambda other: (f"{prefix}{quote(other, safe='')}/page"
                          f"?view={decisions.view_token(deps, other)}")


def _deployment_as_html(dep_id: str, token: str | None = None) -> Response:
    """The read-only page; with ``token``, only if it is a genuine view token of ``dep_id``."""
    try:
        deps = bootstrap.deps()
        if token is not None:
            if not token:
                raise Forbidden("this page opens from the link in Slack or GitHub (it carries a "
                                "read-only token); API clients sign GET /deployments/{id}",
                                code="no_view_token")
            decisions.verify_view(deps, dep_id, token)
        links = _page_links(deps, "../" if token is not None else "./")
        dep = queries.get_deployment(deps, dep_id)
        return html_response(deployment_pages.deployment_page(dep, links))
    except Exception as exc:
        status, _, message = error_status(exc)
        return html_response(deployment_pages.deployment_error_page(status, message), status)


def _service_status(name: str, days: str | None) -> dict:
    deps = bootstrap.deps()
    return queries.service_status(deps, deps.service(name), dora.window(days))


@json_errors
def _service_as_json(name: str, days: str | None) -> Response:
    return json_response(_service_status(name, days))


def _service_as_html(name: str, days: str | None) -> Response:
    try:
        summary = _service_status(name, days)
        return html_response(service_pages.service_page(summary, bootstrap.deps().clock()))
    except Exception as exc:
        status, _, message = error_status(exc)
        return html_response(deployment_pages.deployment_error_page(status, message), status)


def _undecidable(deps: Deps, dep_id: str, claims) -> tuple[dict, Response | None]:
    """The deployment's view, and the 409 page when this link cannot decide it (same on GET and
    POST): link already used, deployment no longer pending, or its request expired."""
    dep = deps.load(dep_id)
    view = views.deployment_json(dep, deps.config.service(dep.service))
    links = _page_links(deps, pages.FROM_APPROVAL)
    if claims.nonce in dep.used_tokens:
        return view, html_response(pages.settled_page(view, used=True, links=links), 409)
    if dep.state is not State.PENDING_APPROVAL:
        return view, html_response(pages.settled_page(view, links=links), 409)
    if approval.is_expired(dep, deps.clock()):
        return view, html_response(pages.settled_page(view, expired_at=dep.expires_at,
                                                      links=links), 409)
    hold = freezes.holding(deps, dep)
    if hold is not None:  # the page says so, and offers break glass to those who may
        view["frozen"] = hold.view(dep.service, deps.config.same_person, claims.identity)
    return view, None


def _html_error(exc: Exception, deps: Deps | None = None, dep_id: str = "") -> Response:
    """An error page; once the link is known to be genuine, it links the deployment's page."""
    status, code, message = error_status(exc)
    view = None
    if deps is not None and status in (403, 409):
        try:
            view = queries.get_deployment(deps, dep_id)
        except Exception:  # the page still says what went wrong
            view = None
    links = _page_links(deps, pages.FROM_APPROVAL) if view is not None else pages.FROM_APPROVAL
    return html_response(pages.error_page(status, message, code, view, links), status)


def rollback_request(body: dict) -> tuple[str, str, bool]:
    """``{"to": "previous" | "<deployment id>", "reason": "...", "force": false}``: nothing
    implicit, nothing extra (an empty or misspelt body must not roll production back)."""
    unknown = sorted(set(body) - {"to", "reason", "force"})
    if unknown:
        raise BadRequest(f"unknown field(s) {', '.join(unknown)}; send "
                         '{"to": "previous" | "<deployment id>", "reason": "...", "force": false}',
                         code="bad_rollback")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise BadRequest("'force' must be true or false", code="bad_rollback")
    to, reason = body.get("to"), body.get("reason", "")
    if not isinstance(to, str) or not to:
        raise BadRequest("'to' is required: \"previous\" or a deployment id", code="bad_rollback")
    if not isinstance(reason, str) or len(reason) > 500:
        raise BadRequest("'reason' must be a string of at most 500 characters",
                         code="bad_rollback")
    return to, reason, force


def promote_request(body: dict) -> str:
    """``{"deployment": "<SUCCEEDED deployment id of the source service>"}``, nothing else."""
    unknown = sorted(set(body) - {"deployment"})
    source = body.get("deployment")
    if unknown or not isinstance(source, str) or not source:
        raise BadRequest('send {"deployment": "<SUCCEEDED deployment id of the service named in '
                         '[service.promote] from>"}', code="bad_promote")
    return source


def caller(request) -> str:
    """The IAM caller API Gateway verified (``requestContext.identity``): its ARN, else its id."""
    identity = (request.context or {}).get("identity") or {}
    return f"iam:{identity.get('userArn') or identity.get('caller') or 'local'}"


def register(app: Chalice, iam_authorizer) -> None:
    @app.route("/health")
    def health():
        return {"ok": True}

    @app.route("/deployments", authorizer=iam_authorizer)
    @json_errors
    def list_deployments():
        params = app.current_request.query_params or {}
        limit = int_param(params, "limit", 50, 1, 200)
        state = params.get("state")  # any case: ?state=failed means FAILED
        found = queries.list_deployments(bootstrap.deps(), params.get("service"),
                                         state.upper() if state else state, limit)
        return json_response({"deployments": found})

    @app.route("/deployments/{dep_id}", authorizer=iam_authorizer)
    def get_deployment(dep_id):
        """JSON for API clients; the read-only page for a signed client that prefers HTML."""
        if prefers_html(app.current_request.headers.get("accept")):
            return _vary(_deployment_as_html(dep_id))
        return _vary(_deployment_as_json(dep_id))

    @app.route("/deployments/{dep_id}/page")
    def deployment_page_by_link(dep_id):
        """The read-only page for whoever holds the deployment's view link (Slack, GitHub)."""
        token = (app.current_request.query_params or {}).get("view", "")
        return _deployment_as_html(dep_id, token)

    @app.route("/services", authorizer=iam_authorizer)
    @json_errors
    def list_services():
        deps = bootstrap.deps()
        return json_response({"services": [queries.service_status(deps, s)
                                           for s in deps.config.services]})

    @app.route("/services/{name}", authorizer=iam_authorizer)
    def get_service(name):
        """JSON for API clients; the service page (history, DORA charts) for browsers."""
        days = (app.current_request.query_params or {}).get("days")
        if prefers_html(app.current_request.headers.get("accept")):
            return _vary(_service_as_html(name, days))
        return _vary(_service_as_json(name, days))

    @app.route("/services/{name}/rollback", methods=["POST"], authorizer=iam_authorizer,
               content_types=["application/json", "application/x-www-form-urlencoded"])
    @json_errors
    def rollback(name):
        """A body is required and read as JSON whatever curl's default Content-Type says."""
        request = app.current_request
        to, reason, force = rollback_request(json_body(request.raw_body))
        deps = bootstrap.deps()
        dep = rollbacks.rollback(deps, name, to, reason, caller(request), force=force)
        return json_response(views.deployment_json(dep, deps.config.service(dep.service)), 202)

    @app.route("/services/{name}/promote", methods=["POST"], authorizer=iam_authorizer,
               content_types=["application/json", "application/x-www-form-urlencoded"])
    @json_errors
    def promote(name):
        """Propose a SUCCEEDED deployment of the source service's very digest to this service."""
        source = promote_request(json_body(app.current_request.raw_body))
        deps = bootstrap.deps()
        dep = promotions.propose(deps, name, source)
        return json_response(views.deployment_json(dep, deps.config.service(dep.service)), 201)

    @app.route("/approvals/{dep_id}", methods=["GET"])
    def approval_page(dep_id):
        """Show what would ship and a form that POSTs the decision. Never changes anything."""
        token = (app.current_request.query_params or {}).get("token", "")
        try:
            deps = bootstrap.deps()
            claims = decisions.verify_link(deps, dep_id, token)
            view, settled = _undecidable(deps, dep_id, claims)
            # A relative action posts back to /approvals/{id} behind any API stage prefix.
            return settled or html_response(pages.confirm_page(
                view, token, claims.identity, dep_id,
                links=_page_links(deps, pages.FROM_APPROVAL)))
        except Exception as exc:
            return _html_error(exc)

    @app.route("/approvals/{dep_id}", methods=["POST"], content_types=FORM)
    def approval_decide(dep_id):
        """Decide with a signed link: the token names the approver; each works once."""
        deps = claims = None
        try:
            fields = form(app.current_request.raw_body)
            deps = bootstrap.deps()
            token = fields.get("token", "")
            claims = decisions.verify_link(deps, dep_id, token)
            decision, comment = fields.get("decision", ""), fields.get("comment", "")
            if decision not in (approval.APPROVE, approval.REJECT):  # the link itself is fine
                view, settled = _undecidable(deps, dep_id, claims)
                return settled or html_response(pages.confirm_page(
                    view, token, claims.identity, dep_id, comment=comment,
                    problem="Choose Approve or Reject; nothing was changed.",
                    links=_page_links(deps, pages.FROM_APPROVAL)), 400)
            outcome = decisions.decide(
                deps, dep_id, identity=claims.identity, via="link", decision=decision,
                comment=comment, link_nonce=claims.nonce,
                break_glass=fields.get("break_glass", "")[:freezes.REASON_LIMIT])
            view = views.deployment_json(outcome.deployment,
                                   deps.config.service(outcome.deployment.service))
            return html_response(pages.result_page(
                outcome.message.split(".")[0], outcome.message, view,
                links=_page_links(deps, pages.FROM_APPROVAL)))
        except Conflict as exc:  # used link or settled deployment: the words GET would show
            if claims is not None and (exc.code == "link_used" or
                                       exc.code.startswith("deployment_")):
                try:
                    settled = _undecidable(deps, dep_id, claims)[1]
                except Exception:
                    settled = None
                if settled is not None:
                    return settled
            return _html_error(exc, deps if claims is not None else None, dep_id)
        except Exception as exc:
            return _html_error(exc, deps if claims is not None else None, dep_id)
