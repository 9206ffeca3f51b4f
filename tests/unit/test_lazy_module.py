"""entrypoints/lazy.py: a route module's names are imported by the first request, not before."""
from __future__ import annotations

import sys

import pytest

from chalicelib.entrypoints.lazy import LazyModule


def test_a_lazy_module_is_imported_by_its_first_use_and_then_is_the_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    colors = LazyModule("colorsys")
    assert "colorsys" not in sys.modules
    assert colors.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert "colorsys" in sys.modules and colors.module() is sys.modules["colorsys"]


def test_a_name_the_module_lacks_is_an_attribute_error_naming_it():
    with pytest.raises(AttributeError, match="no_such_name"):
        LazyModule("colorsys").no_such_name
