"""The Lambda deployment package: ``chalice package --stage prod`` zipped ≤ 10 MB (DESIGN.md
"Budgets"; 10 MB read as 10,000,000 bytes, the stricter reading).

How: the project (app.py, chalicelib/, .chalice/, requirements.txt, vendor/ if any) is copied
into a temporary directory with ``ecs/production`` as ``chalicelib/ecs/prod`` (what ``make
package`` does in place), and ``chalice package --stage prod`` runs there, so the working tree
is never touched (not even chalice's .chalice/deployments cache). Then the zip is read: its size,
the biggest vendored distributions (compressed), and whether it carries compiled .pyc files.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from bench.report import Result, say, section

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 10_000_000
STAGE = "prod"
CONFIG_DIR = "ecs/production"
UNZIPPED_LIMIT = 250 * 1024 * 1024  # Lambda's limit on the unzipped function (and layers)
APP = ("app", "chalicelib", "chalice")  # ours, and the chalice runtime it cherry-picks


def run() -> list[Result]:
    section(f"deployment package: chalice package --stage {STAGE}")
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = _package(Path(tmp))
        size, entries = zip_path.stat().st_size, _entries(zip_path)
    _show(size, entries)
    return [Result("package_size", size / 1e6, BUDGET / 1e6, "MB",
                   shown=f"{size / 1e6:.2f} MB zipped ({len(entries)} files)")]


def _package(tmp: Path) -> Path:
    project = tmp / "project"
    project.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "ecs")
    for name in ("app.py", "requirements.txt"):
        shutil.copy2(ROOT / name, project / name)
    for name in ("chalicelib", ".chalice", "vendor"):
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, project / name, ignore=ignore)
    shutil.copytree(ROOT / CONFIG_DIR, project / "chalicelib" / "ecs" / STAGE)
    out = tmp / "out"
    env = {**os.environ, "SLIPWAY_WORK_QUEUE": f"slipway-{STAGE}-work",
           "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    chalice = Path(sys.executable).parent / "chalice"
    done = subprocess.run([str(chalice), "package", "--stage", STAGE, str(out)], cwd=project,
                          env=env, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"chalice package failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    # as `make package` does: ship bytecode, so a cold start compiles nothing
    subprocess.run([sys.executable, str(ROOT / "deploy" / "precompile.py"),
                    str(out / "deployment.zip")], check=True, capture_output=True, timeout=300)
    return out / "deployment.zip"


def _entries(zip_path: Path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(zip_path) as z:
        return z.infolist()


def _distribution(name: str) -> str:
    """``slack_sdk/web/client.py`` → slack_sdk; ``x-1.0.dist-info/…`` → x (its metadata)."""
    top = name.split("/", 1)[0]
    return top.split("-", 1)[0] if top.endswith((".dist-info", ".data")) else \
        top.removesuffix(".py")


def _show(size: int, entries: list[zipfile.ZipInfo]) -> None:
    groups: dict[str, list[int]] = {}
    for e in entries:
        g = groups.setdefault(_distribution(e.filename), [0, 0, 0])
        g[0] += e.compress_size
        g[1] += e.file_size
        g[2] += 1
    unzipped = sum(e.file_size for e in entries)
    ours = sum(groups.get(n, [0])[0] for n in APP)
    vendored = sorted(((v, k) for k, v in groups.items() if k not in APP), reverse=True)
    say(f"zip {size / 1e6:.2f} MB ({size / BUDGET:.0%} of the budget), unzipped "
        f"{unzipped / 1e6:.1f} MB (Lambda allows {UNZIPPED_LIMIT / 2**20:.0f} MiB); "
        f"app.py + chalicelib + chalice runtime {ours / 1e6:.2f} MB compressed")
    say("biggest vendored dependencies (compressed / unzipped, files):")
    for (packed, raw, files), name in vendored[:6]:
        say(f"  {name:<28} {packed / 1e6:5.2f} MB / {raw / 1e6:5.2f} MB, {files} files")
    pyc = sum(e.filename.endswith(".pyc") for e in entries)
    py = sum(e.filename.endswith(".py") for e in entries)
    say(f"{py} .py and {pyc} .pyc files: " + (
        "nothing precompiled, so every cold start compiles what it imports "
        "(see cold_start's estimate)" if not pyc else "precompiled bytecode included"))
