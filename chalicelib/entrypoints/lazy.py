"""A module imported the first time one of its names is used.

Every Lambda function imports ``app.py``, so everything it imports at the top is paid by all of
them on a cold start: the ECR push handler would load the HTML pages, the DORA statistics and the
approval logic it never runs. Route modules name what their handlers call with
``LazyModule(...)`` instead of an ``import``; the module is imported when a request first needs it.
"""
from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    """``LazyModule("chalicelib.service.queries").get_deployment`` imports the module then."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def module(self) -> ModuleType:
        return importlib.import_module(self._name)  # after the first time: a sys.modules lookup

    def __getattr__(self, attr: str):
        return getattr(self.module(), attr)

    def __repr__(self) -> str:
        return f"LazyModule({self._name!r})"
