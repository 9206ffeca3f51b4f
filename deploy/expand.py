"""The SAM transform done locally (aws-sam-translator, what CloudFormation runs for
``Transform: AWS::Serverless-2016-10-31``): the template as CloudFormation will create it, for
cfn-lint and for the rehearsal on the embedded AWS (moto's CloudFormation has no SAM transform).

    python -m deploy.expand build/package/sam.json build/package/expanded.json [s3://bucket/key]
"""
from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path


class _NoManagedPolicies:
    """Slipway's roles use inline policies only: SAM never needs to look managed ones up."""

    def load(self) -> dict:
        return {}


def expand(sam: dict, code_uri: str = "s3://slipway-artifacts/deployment.zip",
           region: str = "us-east-1") -> dict:
    """The CloudFormation template SAM makes of ``sam``, with every function's code at
    ``code_uri`` (as `aws cloudformation package` would have set it)."""
    from samtranslator.translator.transform import transform

    template = copy.deepcopy(sam)
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = code_uri
    os.environ.setdefault("AWS_DEFAULT_REGION", region)  # SAM needs one for its pseudo values
    return transform(template, {}, _NoManagedPolicies())


def main(argv: list[str]) -> int:
    source, target, *rest = argv
    out = expand(json.loads(Path(source).read_text()), *rest)
    Path(target).write_text(json.dumps(out, indent=2) + "\n")
    print(f"{target}: {len(out['Resources'])} CloudFormation resources")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
