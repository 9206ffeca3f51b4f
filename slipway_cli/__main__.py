"""``python -m slipway_cli``: the same as the ``slipway`` console script."""
from slipway_cli.main import main

raise SystemExit(main())
