"""``python -m devstack serve|demo``: see devstack/cli.py."""
import sys

from devstack.cli import main

sys.exit(main())
