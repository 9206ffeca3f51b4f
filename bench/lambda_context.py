"""What Lambda passes as ``context`` (powertools reads the remaining time and the function name)."""
from __future__ import annotations

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

    def __init__(self, remaining_ms: int = 60_000) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
