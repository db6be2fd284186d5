"""Choosing the IB client library; importing the adapter stays free of it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reconciler.broker import library


def test_choose_when_explicit_then_that_library():
    assert library.choose("ib_insync") == "ib_insync"
    assert library.choose(" IB_ASYNC ") == "ib_async"


def test_choose_when_unknown_then_clear_error():
    with pytest.raises(library.UnknownLibrary, match="ib_async, ib_insync"):
        library.choose("ibapi")


def test_choose_when_nothing_requested_then_preferred(monkeypatch):
    monkeypatch.setattr(library, "CONFIGURED", None)
    assert library.choose(None) == "ib_async"


def test_environment_choice_is_read_at_import_time():
    code = "from reconciler.broker import library; print(library.choose(None))"
    env = {"RECONCILER_IB_LIBRARY": "ib_insync", "PATH": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "ib_insync"


def test_importing_the_broker_package_does_not_import_a_client_library():
    code = (
        "import sys, reconciler.broker; "
        "print(any(m in sys.modules for m in ('ib_async', 'ib_insync')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", ["ib_async", "ib_insync"])
def test_loading_a_library_defers_numpy_until_something_reads_from_it(name):
    code = f"""
import json, sys
from reconciler.broker import library
library.load({name!r})
before = "numpy._core" in sys.modules
import eventkit
source = eventkit.Event()
arrays = []
source.array(3).connect(arrays.append)
for value in (1.0, 2.0, 4.0):
    source.emit(value)
import numpy
print(json.dumps({{
    "before": before,
    "after": "numpy._core" in sys.modules,
    "same": sys.modules["numpy"] is numpy and type(numpy).__name__ == "module",
    "mean": float(arrays[-1].mean()),
}}))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == {"before": False, "after": True, "same": True, "mean": 7 / 3}
