"""Plain, JSON-able views of the desired-state model, and the canonical content hash.

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
import operator
from collections.abc import Iterable, Mapping
from dataclasses import fields
from typing import Any

from reconciler.model.desired import (
    DesiredState,
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


# Built directly rather than with `dataclasses.asdict` (a recursive deep copy): a plan of
# 100 accounts x 1,000 targets builds 100,000 of these. The instrument's fields are plain
# values, so the flat copy is the same dict.
_INSTRUMENT_FIELDS = tuple(f.name for f in fields(Instrument))
_instrument_values = operator.attrgetter(*_INSTRUMENT_FIELDS)
_PORTFOLIO_FIELDS = tuple(f.name for f in fields(Portfolio) if f.name != "source")


def instrument_snapshot(instrument: Instrument) -> dict[str, Any]:
    return dict(zip(_INSTRUMENT_FIELDS, _instrument_values(instrument), strict=True))


def portfolio_snapshot(
    portfolio: Portfolio, instruments: dict[int, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The portfolio without `source`, its targets keyed by instrument key.

    `instruments` may memoise instrument snapshots, by `id` of the instrument, across the
    portfolios of one plan (accounts of one model hold the very same instrument objects);
    it must not outlive the desired state it was filled from. The memoised dicts are then
    shared between snapshots, which, like every snapshot, are read and never changed."""
    memo: dict[int, dict[str, Any]] = {} if instruments is None else instruments
    data: dict[str, Any] = {}
    for name in _PORTFOLIO_FIELDS:
        if name == "targets":
            targets = {}
            for target in portfolio.targets:
                instrument = target.instrument
                found = memo.get(id(instrument))
                if found is None:
                    found = memo[id(instrument)] = instrument_snapshot(instrument)
                targets[instrument.key] = {
                    "instrument": found, "weight": target.weight, "quantity": target.quantity
                }
            data[name] = targets
        else:
            data[name] = _jsonable(getattr(portfolio, name))
    return data


def policy_snapshot(policy: RiskPolicy) -> dict[str, Any]:
    data = _plain(policy)
    data["restricted"] = sorted(policy.restricted)
    return data


def schedule_snapshot(schedule: Schedule) -> dict[str, Any]:
    data = _plain(schedule)
    data["accounts"] = sorted(schedule.accounts)
    return data


def snapshot_of(
    portfolio: Portfolio,
    policy: RiskPolicy | None,
    instruments: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A portfolio and the policy that binds it, as plain data for deepdiff between cycles
    (`instruments`: see `portfolio_snapshot`)."""
    return {
        "portfolio": portfolio_snapshot(portfolio, instruments),
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


def documents_of(state: DesiredState) -> dict[str, dict[str, Any]]:
    """Every document of a desired state as `{kind: {name: fields}}` (names out of the fields),
    what `reconciler.decide.changes.document_changes` compares between two revisions."""

    def unnamed(data: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in data.items() if k != "name"}

    return {
        "Portfolio": {p.name: unnamed(portfolio_snapshot(p)) for p in state.portfolios},
        "RiskPolicy": {
            name: unnamed(policy_snapshot(p)) for name, p in sorted(state.risk_policies.items())
        },
        "Schedule": {s.name: unnamed(schedule_snapshot(s)) for s in state.schedules},
    }
