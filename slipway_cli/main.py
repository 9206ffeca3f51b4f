"""``slipway``: arguments, the subcommands, and exit codes (DESIGN.md "Operator CLI").

    slipway [--url URL | --stack NAME] [--region R] [--json] COMMAND ...
      services
      deployments [--service S] [--state X] [--limit N]
      show ID
      watch ID [--interval SECONDS] [--timeout SECONDS]
      rollback SERVICE --to previous|ID --reason R [--force]
      promote SERVICE --deployment ID

Exit codes: 0 done, 1 the deployment failed (``watch``), 2 usage, 3 refused by Slipway (4xx, its
message printed), 4 cannot reach or authenticate. Errors are one line on stderr, never a traceback.
The global options may come before or after the subcommand.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.parse
from importlib import metadata
from typing import IO, Callable

from slipway_cli import render
from slipway_cli.api import Api
from slipway_cli.errors import CliError, Failed, Unreachable

WATCH_INTERVAL = 5.0
WATCH_MIN_INTERVAL = 0.5
WATCH_RETRIES = 3  # consecutive failed polls before `watch` gives up


def _seg(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def services(api: Api, args: argparse.Namespace, out: IO[str], style: render.Style) -> int:
    body = api.get("/services").body
    print(_json(body) if args.json else render.services(body.get("services") or [], style), file=out)
    return 0


def deployments(api: Api, args: argparse.Namespace, out: IO[str], style: render.Style) -> int:
    query = {"service": args.service, "state": args.state, "limit": args.limit}
    body = api.get("/deployments", query).body
    print(_json(body) if args.json else render.deployments(body.get("deployments") or [], style),
          file=out)
    return 0


def show(api: Api, args: argparse.Namespace, out: IO[str], style: render.Style) -> int:
    dep = api.get(f"/deployments/{_seg(args.id)}").body
    print(_json(dep) if args.json else render.deployment(dep, style), file=out)
    return 0


def watch(api: Api, args: argparse.Namespace, out: IO[str], style: render.Style,
          sleep: Callable[[float], None] = time.sleep,
          clock: Callable[[], float] = time.monotonic) -> int:
    """One GET per poll; prints each new timeline line; ends when the deployment does."""
    deadline = clock() + args.timeout if args.timeout else None
    seen: set[tuple] = set()
    failures = 0
    while True:
        try:
            dep = api.get(f"/deployments/{_seg(args.id)}").body
            failures = 0
        except Unreachable as exc:
            failures += 1
            if failures > WATCH_RETRIES:
                raise
            print(f"slipway: {exc.message} (retrying)", file=sys.stderr)
            sleep(args.interval)
            continue
        if not seen and not args.json:
            print(f"{dep.get('id')}  {dep.get('service')}  {dep.get('kind')}  {render.release(dep)}",
                  file=out, flush=True)
        for entry in render.ordered(dep.get("timeline") or []):
            key = (entry.get("at"), entry.get("state"), entry.get("note"))
            if key not in seen:
                seen.add(key)
                if not args.json:
                    print(render.timeline_line(entry, style), file=out, flush=True)
        state = dep.get("state")
        if state in render.FINISHED:
            break
        if deadline is not None and clock() >= deadline:
            raise Failed(f"{args.id} is still {state} after {args.timeout:g} s; it goes on "
                         f"without us: `slipway watch {args.id}` again", dep)
        sleep(args.interval)
    if args.json:
        print(_json(dep), file=out)
    else:
        reason = f" ({dep['reason']})" if dep.get("reason") else ""
        print(f"=> {style.state(state)}{reason}", file=out)
    return 0 if state == "SUCCEEDED" else 1


def rollback(api: Api, args: argparse.Namespace, out: IO[str], style: render.Style) -> int:
    body: dict = {"to": args.to, "reason": args.reason}
    if args.force:
        body["force"] = True
    dep = api.post(f"/services/{_seg(args.service)}/rollback", body).body
    if args.json:
        print(_json(dep), file=out)
        return 0
    note = render.forced_note(dep)
    forced = f"\nFORCED {note}" if note else ""
    print(f"rollback {dep.get('id')} of {dep.get('service')} to {render.release(dep)} "
          f"({dep.get('rollback_of') or args.to}): {style.state(dep.get('state'))}{forced}\n"
          f"follow it: slipway watch {dep.get('id')}", file=out)
    return 0


def promote(api: Api, args: argparse.Namespace, out: IO[str], style: render.Style) -> int:
    dep = api.post(f"/services/{_seg(args.service)}/promote", {"deployment": args.deployment}).body
    if args.json:
        print(_json(dep), file=out)
        return 0
    print(f"promotion {dep.get('id')} of {dep.get('service')}: {render.release(dep)} from "
          f"{args.deployment}: {style.state(dep.get('state'))}\n"
          f"follow it: slipway watch {dep.get('id')}", file=out)
    return 0


COMMANDS: dict[str, Callable[..., int]] = {
    "services": services, "deployments": deployments, "show": show, "watch": watch,
    "rollback": rollback, "promote": promote}


def _json(body: object) -> str:
    return json.dumps(body, indent=2, sort_keys=False)


def _interval(text: str) -> float:
    value = float(text)
    if value < WATCH_MIN_INTERVAL:
        raise argparse.ArgumentTypeError(f"at least {WATCH_MIN_INTERVAL:g} seconds")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _global_options(suppress: bool) -> argparse.ArgumentParser:
    """--url/--stack/--region/--json, accepted before or after the subcommand."""
    default = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    where = common.add_mutually_exclusive_group()
    where.add_argument("--url", default=default,
                       help="the API's base URL (default: $SLIPWAY_URL)")
    where.add_argument("--stack", default=default,
                       help="a CloudFormation stack whose ApiUrl output is the API")
    common.add_argument("--region", default=default,
                        help="AWS region (default: the URL's, else AWS_REGION / the profile's)")
    common.add_argument("--json", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="print the API's JSON instead of tables")
    return common


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="slipway", parents=[_global_options(False)],
        description="Operate a deployed Slipway: requests are signed with your AWS credentials.",
        epilog="exit codes: 0 done, 1 the deployment failed, 2 usage, 3 refused by Slipway, "
               "4 cannot reach or authenticate")
    top.add_argument("--version", action="version", version=f"slipway {_version()}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_global_options(True)]
    sub.add_parser("services", parents=common, help="each service: running, last good, pending")
    listing = sub.add_parser("deployments", parents=common, help="deployments, newest first")
    listing.add_argument("--service")
    listing.add_argument("--state", help="e.g. FAILED, PENDING_APPROVAL")
    listing.add_argument("--limit", type=_positive, default=20)
    sub.add_parser("show", parents=common, help="one deployment and its timeline").add_argument("id")
    follow = sub.add_parser("watch", parents=common,
                            help="follow a deployment until it ends (exit 0 SUCCEEDED, 1 otherwise)")
    follow.add_argument("id")
    follow.add_argument("--interval", type=_interval, default=WATCH_INTERVAL,
                        help=f"seconds between polls (default {WATCH_INTERVAL:g})")
    follow.add_argument("--timeout", type=float, default=None,
                        help="give up watching after this many seconds (exit 1)")
    back = sub.add_parser("rollback", parents=common, help="roll a service back (no migration)")
    back.add_argument("service")
    back.add_argument("--to", required=True, help='"previous" or a SUCCEEDED deployment id')
    back.add_argument("--reason", required=True, help="why: recorded in the ledger, Slack, GitHub")
    back.add_argument("--force", action="store_true",
                      help="roll back past migrations that ran since the target")
    up = sub.add_parser("promote", parents=common,
                        help="propose a SUCCEEDED deployment's digest to this service")
    up.add_argument("service")
    up.add_argument("--deployment", required=True)
    return top


def _version() -> str:
    try:
        return metadata.version("slipway")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # exits 2 with argparse's usage message on bad arguments
    out = sys.stdout
    style = render.Style(out)
    try:
        api = Api.connect(args.url, args.stack, args.region)
        return COMMANDS[args.command](api, args, out, style)
    except CliError as exc:
        if args.json and exc.body is not None:
            print(_json(exc.body), file=out)
        print(f"slipway: {exc.message}", file=sys.stderr)
        for line in render.refusal_details(exc.body):
            print(line, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("slipway: interrupted", file=sys.stderr)
        return 130

