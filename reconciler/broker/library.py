"""Which IB client library the broker adapter drives, and how it is loaded.

Responsible for choosing between `ib_async` (preferred) and `ib_insync` (supported): the
choice comes from an explicit argument, else `RECONCILER_IB_LIBRARY` (read once, at import
time, from the environment or `.env`), else `ib_async`, falling back to `ib_insync` when
`ib_async` is not installed. Also reads `IB_GATEWAY_TIMEZONE`, the zone the gateway uses for
timestamps without one. Must not import a client library at module import time: commands that
never talk to the gateway must stay fast, so `load()` imports on first use.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import threading
from types import ModuleType

from reconciler.broker.errors import BrokerError
from reconciler.model.settings import read_dotenv

SUPPORTED = ("ib_async", "ib_insync")
PREFERRED = "ib_async"
LIBRARY_ENV = "RECONCILER_IB_LIBRARY"
TIMEZONE_ENV = "IB_GATEWAY_TIMEZONE"
DEFAULT_GATEWAY_TIMEZONE = "UTC"


class UnknownLibrary(BrokerError):
    """The requested IB client library is not one we support or is not installed."""


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None:
        value = read_dotenv().get(name)
    return value.strip() if value and value.strip() else None


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def choose(requested: str | None) -> str:
    """The library name to use for an explicit request (or None: environment, then default)."""
    name = requested or CONFIGURED
    if name:
        name = name.strip().lower()
        if name not in SUPPORTED:
            raise UnknownLibrary(
                f"{LIBRARY_ENV}={name!r} is not supported; use one of {', '.join(SUPPORTED)}"
            )
        if not _installed(name):
            raise UnknownLibrary(
                f"the IB client library {name!r} is not installed "
                f"(pip install {name.replace('_', '-') if name == 'ib_async' else name})"
            )
        return name
    for candidate in (PREFERRED, *SUPPORTED):
        if _installed(candidate):
            return candidate
    raise UnknownLibrary("neither ib_async nor ib_insync is installed (pip install ib_async)")


def load(requested: str | None = None) -> ModuleType:
    """Import and return the chosen client module (`ib_async` or `ib_insync`).

    Both import eventkit, whose array operators (which the reconciler never uses) import
    numpy at once: numpy is stood in for until something reads from it (`_NumpyOnFirstUse`),
    so that connecting does not wait for it (about 0.1 s of CPU, and its BLAS threads)."""
    name = choose(requested)
    if name not in sys.modules and "numpy" not in sys.modules:
        _NumpyOnFirstUse.install()
    return importlib.import_module(name)


class _NumpyOnFirstUse(ModuleType):
    """Stands in for numpy in `sys.modules` until an attribute is read from it: then numpy
    is imported for real, takes its place in `sys.modules`, and answers from then on (also
    through this object, which modules imported meanwhile hold as `np`)."""

    _lock = threading.Lock()

    @classmethod
    def install(cls) -> None:
        spec = importlib.util.find_spec("numpy")
        if spec is None:
            return  # not installed: the import fails where it would have failed
        stand_in = cls("numpy")
        stand_in.__spec__ = spec
        sys.modules.setdefault("numpy", stand_in)

    def __getattr__(self, name: str) -> object:
        with _NumpyOnFirstUse._lock:
            if sys.modules.get("numpy") is self:
                del sys.modules["numpy"]
            real = importlib.import_module("numpy")
            # From now on a holder of this object reads numpy's names directly, not through
            # this method.
            self.__dict__.update(real.__dict__)
        return getattr(real, name)


def version(module: ModuleType) -> str:
    return str(getattr(module, "__version__", "?"))


def gateway_timezone() -> str:
    """The zone for naive gateway timestamps (executions); UTC unless configured."""
    return _env(TIMEZONE_ENV) or DEFAULT_GATEWAY_TIMEZONE


CONFIGURED: str | None = _env(LIBRARY_ENV)
