"""Every command in the docs is one a test or the CI runs, or says it needs an AWS account.

Reads each ```sh block of README.md and docs/*.md. A command passes when its block or line says
"needs an AWS account"; when it is a `slipway` line of a docs/cli.md section that
tests/e2e/test_cli_devstack.py runs from the doc; when a test runs it as written (`make <target>`
or `python -m <module>` as a subprocess argument list); or when it is `make <target>` and the
program the Makefile's recipe runs is the one a named test (or .ci/run) runs.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AWS = "needs an AWS account"
CLI_TEST = ROOT / "tests" / "e2e" / "test_cli_devstack.py"
# make target → (the program its recipe runs, the file that runs that program, as written there)
MAKE_RUN_BY = {
    "test": ("pytest", ".ci/run", "make test"),
    "demo": ("-m devstack demo", "tests/e2e/test_scenarios.py", '"-m", "devstack", "demo"'),
    "local": ("-m devstack serve", "tests/e2e/test_scenarios.py", '"-m", "devstack", "serve"'),
}


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def commands() -> list[tuple[str, str, str]]:
    """(file, heading above the block, command line) of every command in a shell block."""
    found = []
    for path in doc_files():
        text = path.read_text()
        for block in re.finditer(r"```(?:sh|bash|shell)\n(.*?)```", text, re.S):
            heading = ([""] + re.findall(r"^#+ .*$", text[:block.start()], re.M))[-1]
            marked = AWS in block.group(1)
            for line in block.group(1).splitlines():
                if line.strip() and not line.strip().startswith("#"):
                    found.append((path.relative_to(ROOT).as_posix(), heading,
                                  line + (f"  # {AWS}" if marked else "")))
    return found


def recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text()
    found = re.search(rf"^{re.escape(target)}:.*\n((?:\t.*\n?)+)", makefile, re.M)
    return found.group(1) if found else ""


def read_test_files() -> list[str]:
    return [p.read_text() for p in sorted((ROOT / "tests").rglob("*.py"))]


def run_as_written(words: list[str], files: list[str]) -> str | None:
    """A test file that runs ``make <target>`` (both words as string literals) or
    ``python -m <module>`` as a subprocess argument list."""
    if words[:1] == ["make"] and len(words) > 1:
        wanted = ['"make"', f'"{words[1]}"']
    elif len(words) > 2 and words[0].endswith("python") and words[1] == "-m":
        wanted = [f'"-m", "{words[2]}"']
    else:
        return None
    found = any(all(w in text for w in wanted) for text in files)
    return f"a test runs {' '.join(wanted)}" if found else None


def why_it_runs(file: str, heading: str, line: str) -> str | None:
    """Which test or CI step runs this command, or None."""
    command = line.split("#", 1)[0].strip()
    if AWS in line:
        return "needs an AWS account"
    if file == "docs/cli.md" and command.startswith("slipway "):
        if f'doc_commands("{heading}")' in CLI_TEST.read_text():
            return f"{CLI_TEST.name} runs the block under {heading!r}"
        return None
    words = command.split()
    as_written = run_as_written(words, read_test_files())
    if as_written:
        return as_written
    if words[:1] == ["make"] and len(words) > 1 and words[1] in MAKE_RUN_BY:
        program, runner, as_written = MAKE_RUN_BY[words[1]]
        if program in recipe(words[1]) and as_written in (ROOT / runner).read_text():
            return f"{runner} runs {program}"
    return None


def test_every_documented_command_is_run_or_marked():
    """No command in the docs that nothing runs and nothing marks as needing an AWS account."""
    found = commands()
    assert any(f == "docs/cli.md" for f, _, _ in found)  # the reader found the blocks
    unrun = [f"{file}: {line.strip()}" for file, heading, line in found
             if why_it_runs(file, heading, line) is None]
    assert not unrun, ("run these in a test (or mark them '# needs an AWS account'):\n"
                       + "\n".join(unrun))


@pytest.mark.parametrize("line, runs", [
    ("slipway services", False),                      # not under a section the e2e test runs
    ("curl -s $SLIPWAY_URL/services", False),
    ("make bench", False),                            # a target no test runs
    (".venv/bin/python -m nothing.here prod", False),
    ("aws cloudformation deploy  # needs an AWS account", True),
    ("make demo SCENARIO=rollback", True),
    ("make local PORT=8001", True),
])
def test_the_rule_itself(line, runs):
    """The check refuses what nothing runs and accepts what a test runs or what is marked."""
    assert (why_it_runs("docs/operating.md", "# Operating", line) is not None) == runs
