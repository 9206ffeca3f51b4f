"""Run the benchmarks and print one line per budget: measured, budget, ratio, PASS/OVER.

Exits 0 whatever the numbers say (benchmarks report, they do not gate); 1 only if a benchmark
crashed. ``--only NAME`` (repeatable) runs just those.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from bench.report import Result, section

BENCHMARKS = ("api_calls", "cold_start", "slack_ack", "prune_moto", "prune", "package_size")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    results: list[Result] = []
    crashed: list[str] = []
    for name in args.only or BENCHMARKS:
        started = time.perf_counter()
        try:
            results += importlib.import_module(f"bench.{name}").run()
        except Exception:
            traceback.print_exc()
            crashed.append(name)
        print(f"   ({name} took {time.perf_counter() - started:.1f} s)", flush=True)
    _summary(results, crashed)
    return 1 if crashed else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", choices=BENCHMARKS, metavar="NAME",
                        help=f"run only this benchmark (one of {', '.join(BENCHMARKS)})")
    return parser


def _summary(results: list[Result], crashed: list[str]) -> None:
    section("budgets (ratio = measured / budget; benchmarks report, they never fail the build)")
    for result in results:
        print(result.line())
    for name in crashed:
        print(f"{name:<13} CRASHED (traceback above)")


if __name__ == "__main__":
    sys.exit(main())
