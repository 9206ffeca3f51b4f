"""Check a stage's services.toml before it ships: the very validation Slipway runs at start-up
(chalicelib/config.py), plus what packaging needs (the roles each service's task definitions
carry, for its least-privilege IAM). Fails naming the file, the service and the key.

    python -m deploy.check ecs/production
"""
from __future__ import annotations

import sys
from pathlib import Path

from chalicelib import config as config_mod
from chalicelib.errors import ConfigError
from deploy import iam


def check(config_dir: str) -> config_mod.Config:
    path = Path(config_dir) / "services.toml"
    cfg = config_mod.load(path)
    for svc in cfg.services:
        iam.roles_of(svc, str(path))
    return cfg


def main(argv: list[str]) -> int:
    try:
        cfg = check(argv[0] if argv else "ecs/production")
    except ConfigError as exc:
        print(f"config error: {exc.message}", file=sys.stderr)
        return 2
    print(f"{cfg.path}: {len(cfg.services)} services, valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
