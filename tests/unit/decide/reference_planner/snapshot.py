"""REFERENCE COPY (issue 12) of reconciler/desired/snapshot.py as it was before the optimisation: the
property test compares the optimised planner with it. Do not edit or import from the package.

Plain, JSON-able views of the desired-state model, and the canonical content hash.

Responsible for `snapshot_of(portfolio, policy)` (what deepdiff compares between cycles: a
dict whose targets are keyed by instrument key, so a change reads as
`root['targets']['VTI']['weight']`) and for `content_hash`, the SHA-256 of the canonical
JSON of the whole parsed, normalised state. Hashing the model rather than the file bytes
means comments, formatting, file layout and equivalent spellings (`55%` vs `0.55`) do not
change the hash; any change that alters what the reconciler would do does. Must not read
files or know about YAML.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, fields
from typing import Any

from reconciler.model.desired import (
    Instrument,
    LockedInstrument,
    Portfolio,
    RiskPolicy,
    Schedule,
)


def _plain(value: Any) -> dict[str, Any]:
    """A dataclass as a dict without its `source` (where it came from is not what it is)."""
    return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value) if f.name != "source"}


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "__dataclass_fields__"):
        return _plain(value)
    return value


def instrument_snapshot(instrument: Instrument) -> dict[str, Any]:
    return asdict(instrument)


def portfolio_snapshot(portfolio: Portfolio) -> dict[str, Any]:
    data = _plain(portfolio)
    data["targets"] = {
        target.instrument.key: {
            "instrument": instrument_snapshot(target.instrument),
            "weight": target.weight,
            "quantity": target.quantity,
        }
        for target in portfolio.targets
    }
    return data


def policy_snapshot(policy: RiskPolicy) -> dict[str, Any]:
    data = _plain(policy)
    data["restricted"] = sorted(policy.restricted)
    return data


def schedule_snapshot(schedule: Schedule) -> dict[str, Any]:
    data = _plain(schedule)
    data["accounts"] = sorted(schedule.accounts)
    return data


def snapshot_of(portfolio: Portfolio, policy: RiskPolicy | None) -> dict[str, Any]:
    """A portfolio and the policy that binds it, as plain data for deepdiff between cycles."""
    return {
        "portfolio": portfolio_snapshot(portfolio),
        "riskPolicy": policy_snapshot(policy) if policy is not None else None,
    }


def content_hash(
    portfolios: Iterable[Portfolio],
    risk_policies: Mapping[str, RiskPolicy],
    schedules: Iterable[Schedule],
    lock: Mapping[str, LockedInstrument],
) -> str:
    canonical = {
        "portfolios": sorted((portfolio_snapshot(p) for p in portfolios), key=lambda d: d["name"]),
        "riskPolicies": {name: policy_snapshot(p) for name, p in sorted(risk_policies.items())},
        "schedules": sorted((schedule_snapshot(s) for s in schedules), key=lambda d: d["name"]),
        "lock": {key: _plain(entry) for key, entry in sorted(lock.items())},
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
