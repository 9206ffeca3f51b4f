"""Slipway's benchmarks: one module per budget of DESIGN.md ("Budgets"), each printing a ratio.

    python -m bench                  run all of them (``make bench``)
    python -m bench --only prune     run one (api_calls, cold_start, slack_ack, prune_moto, prune,
                                     package_size)

The peer (fabfuel's ecs-deploy) lives in a venv of its own under build/ (bench/peer.py); both tools
run on the same loopback AWS with every call counted at the server (bench/world.py).

Benchmarks measure and report; they never fail a build. Tests never assert timing.
This package stays import-light: the cold-start child process (``bench._cold_child``) imports it.
"""
