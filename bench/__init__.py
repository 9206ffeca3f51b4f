"""Slipway's benchmarks: one module per budget of DESIGN.md ("Budgets"), each printing a ratio.

    python -m bench                  run all of them (``make bench``)
    python -m bench --only prune     run one (cold_start, api_calls, prune, package_size)

Benchmarks measure and report; they never fail a build. Tests never assert timing.
This package stays import-light: the cold-start child process (``bench._cold_child``) imports it.
"""
