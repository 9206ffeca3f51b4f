"""The CLI's exceptions: one root, each carrying the exit code DESIGN.md gives its kind.

    CliError (exit 1)
    ├── Failed       1  the deployment ended other than SUCCEEDED
    ├── UsageError   2  the command line cannot be run (bad option, bad URL, no region)
    ├── Refused      3  Slipway answered 4xx: its message (and code) are printed
    └── Unreachable  4  cannot reach Slipway, or cannot authenticate to it
"""
from __future__ import annotations


class CliError(Exception):
    """Something the user is told in one line (never a traceback), then the exit code."""

    exit_code = 1

    def __init__(self, message: str, body: object = None):
        super().__init__(message)
        self.message = message
        self.body = body  # the API's JSON answer, when there was one (printed with --json)


class Failed(CliError):
    """The deployment ended, and not SUCCEEDED."""

    exit_code = 1


class UsageError(CliError):
    """The command line, or what it names (URL, region, stack output), is not usable."""

    exit_code = 2


class Refused(CliError):
    """Slipway itself said no (4xx with its ``error`` code and ``message``)."""

    exit_code = 3


class Unreachable(CliError):
    """No answer, no credentials, a refused signature, or an answer that is not Slipway's."""

    exit_code = 4
