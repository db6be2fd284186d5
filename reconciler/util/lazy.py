"""Package attributes imported on first use (PEP 562 module `__getattr__`).

Responsible for `lazy_attributes`: the `__getattr__` of a package whose public names live in
submodules that are costly to import, so that importing the package stays cheap and a name
is imported the first time it is read (then kept in the package's namespace). Must not
import anything before a name is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, homes: Mapping[str, str], namespace: dict[str, Any]
) -> Callable[[str], Any]:
    """`__getattr__` for `package`: each name of `homes` is read from its module (`homes`
    maps name to module) on first use and stored in `namespace` (the package's globals)."""

    def __getattr__(name: str) -> Any:
        module = homes.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
