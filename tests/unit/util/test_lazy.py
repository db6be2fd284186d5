"""`lazy_attributes` imports a package's name from its module on first read, then keeps it."""

from __future__ import annotations

import sys

import pytest

from reconciler.util.lazy import lazy_attributes


def test_lazy_attribute_when_read_then_imported_from_its_module_and_kept():
    namespace: dict = {}
    getattr_ = lazy_attributes("pkg", {"dedent": "textwrap"}, namespace)
    value = getattr_("dedent")
    assert value is sys.modules["textwrap"].dedent
    assert namespace["dedent"] is value


def test_lazy_attribute_when_name_is_unknown_then_attribute_error_names_the_package():
    getattr_ = lazy_attributes("pkg", {}, {})
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'nope'"):
        getattr_("nope")


def test_desired_package_when_imported_then_its_loader_waits_for_first_use():
    import subprocess

    probe = (
        "import sys, reconciler.desired as d; "
        "before = 'reconciler.desired.loader' in sys.modules; "
        "d.load_desired_state; "
        "print(before, 'reconciler.desired.loader' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
