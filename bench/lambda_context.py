"""What Lambda passes as ``context`` (powertools reads the remaining time and the function name).

The remaining time counts down in real time from ``timeout_ms`` (the function's timeout), as on
Lambda: a handler that watches it (pruning does) stops when Lambda would stop it.
"""
from __future__ import annotations

import time

REGION = "us-east-1"
ACCOUNT = "123456789012"


class Context:
    function_name = "slipway-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:slipway-bench"
    aws_request_id = "00000000-0000-0000-0000-000000000000"
    log_group_name = "/aws/lambda/slipway-bench"
    log_stream_name = "bench"

    def __init__(self, timeout_ms: int = 60_000) -> None:
        self.deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self.deadline - time.monotonic()) * 1000), 0)
