"""The layering a reader relies on: domain and service code know no adapter, and no two modules
import each other at import time (a cycle makes import order matter and slows cold starts)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "chalicelib"


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path: Path, *, top_level_only: bool) -> set[str]:
    """The chalicelib modules ``path`` imports (``from chalicelib.x import y`` counts x and x.y)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in out if m.startswith("chalicelib")}


MODULES = {_module(p): p for p in PACKAGE.rglob("*.py")}


def test_domain_and_service_import_no_adapter_or_entrypoint():
    wrong = {name: sorted(m for m in _imports(path, top_level_only=False)
                          if m.startswith(("chalicelib.adapters", "chalicelib.entrypoints")))
             for name, path in MODULES.items()
             if name.startswith(("chalicelib.domain", "chalicelib.service"))}
    assert {k: v for k, v in wrong.items() if v} == {}


def test_no_import_cycles_at_import_time():
    graph = {name: {m for m in _imports(path, top_level_only=True) if m in MODULES and m != name}
             for name, path in MODULES.items()}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in graph[node]:
            if nxt in trail:
                cycles.append(trail[trail.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, trail + [nxt])
        done.add(node)

    done: set[str] = set()
    for start in graph:
        if start not in done:
            visit(start, [start])
    assert cycles == []


def test_notifier_adapters_and_their_registry_do_not_import_each_other():
    registry = "chalicelib.adapters.notifiers"
    for name in ("chalicelib.adapters.slack_notifier", "chalicelib.adapters.github_notifier"):
        assert registry not in _imports(MODULES[name], top_level_only=False)


def test_importing_the_app_does_not_import_slack_sdk():
    """slack_sdk (~130 ms) is imported only by the code that talks to Slack, so the cold start of
    a handler that never does (an ECR push without a Slack channel, a stopped task) skips it."""
    probe = "import sys, app; print(sorted(m for m in sys.modules if m.split('.')[0] == 'slack_sdk'))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"


#: What only some functions use, so ``import app`` (every function's cold start) must not load it:
#: the pages, the route-only services, the handlers' own service modules, and the libraries they
#: bring (statistics for DORA, zoneinfo for freeze windows, powertools' parameter providers).
NOT_AT_IMPORT = (
    "chalicelib.entrypoints.pages", "chalicelib.entrypoints.deployment_page",
    "chalicelib.entrypoints.service_page", "chalicelib.entrypoints.charts",
    "chalicelib.service.decisions", "chalicelib.service.dora", "chalicelib.service.queries",
    "chalicelib.service.rollback", "chalicelib.service.views", "chalicelib.service.intake",
    "chalicelib.service.pipeline", "chalicelib.service.prune", "chalicelib.service.reconcile",
    "chalicelib.service.verify", "statistics", "zoneinfo", "asyncio",
    "aws_lambda_powertools.utilities.parameters", "aws_lambda_powertools.utilities.idempotency",
)


def test_importing_the_app_loads_none_of_what_only_some_functions_use():
    probe = "import sys, app; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True)
    loaded = set(out.stdout.split())
    assert "app" in loaded and "chalicelib.entrypoints.routes" in loaded  # the probe worked
    assert sorted(loaded & set(NOT_AT_IMPORT)) == []
