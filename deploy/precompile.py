"""Add Python 3.11 bytecode to a Lambda deployment zip, so cold starts do not compile imports.

Lambda's code directory is read-only: without ``__pycache__`` in the zip, every cold start compiles
each module it imports (bench/cold_start.py estimates 160-200 ms for the ECR push path). The pyc
files use unchecked hashes, so the zip's timestamps do not matter.

    python deploy/precompile.py build/package/deployment.zip
"""
from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path

TAG = sys.implementation.cache_tag  # cpython-311 when run from the project's .venv


def precompile(zip_path: Path) -> int:
    if TAG != "cpython-311":
        raise SystemExit(f"precompile needs Python 3.11 (the Lambda runtime), not {TAG}")
    out = zip_path.with_suffix(".tmp")
    count = 0
    with zipfile.ZipFile(zip_path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data)
            if info.filename.endswith(".py") and "__pycache__" not in info.filename:
                try:
                    code = compile(data, info.filename, "exec", dont_inherit=True)
                except SyntaxError:
                    continue  # vendored files for other Pythons; Lambda never imports them
                path = Path(info.filename)
                pyc = path.parent / "__pycache__" / f"{path.stem}.{TAG}.pyc"
                body = importlib._bootstrap_external._code_to_hash_pyc(
                    code, importlib.util.source_hash(data), checked=False)
                entry = zipfile.ZipInfo(str(pyc), info.date_time)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = info.external_attr
                dst.writestr(entry, bytes(body))
                count += 1
    out.replace(zip_path)
    return count


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "build/package/deployment.zip")
    print(f"precompiled {precompile(target)} modules into {target}")
