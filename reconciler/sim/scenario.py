"""Scenario files for the simulator: loading, validation and the built-in demo.

Responsible for reading a scenario YAML file, validating it against
``schemas/scenario.schema.json`` (errors name file, line and field), rejecting duplicate keys,
and returning a ``Scenario`` value the gateway starts from. Must not start anything.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from reconciler.sim.market import Instrument, Universe, builtin_universe

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_NAME = "scenario.schema.json"
DEMO_PATH = Path(__file__).resolve().parent / "scenarios" / "demo.yaml"
DEFAULT_CASH = 1_000_000.0


class ScenarioError(Exception):
    """A scenario file is unusable; the message names file, line and field."""


@dataclass(frozen=True)
class PositionSpec:
    symbol: str
    quantity: float
    avg_cost: float | None = None
    currency: str = ""
    primary_exchange: str = ""
    con_id: int = 0


@dataclass(frozen=True)
class AccountSpec:
    account_id: str
    cash: dict[str, float] = field(default_factory=dict)
    positions: tuple[PositionSpec, ...] = ()
    base_currency: str = "USD"
    account_type: str = "cash"


@dataclass
class Scenario:
    name: str = "custom"
    seed: int = 0
    accounts: list[AccountSpec] = field(default_factory=list)
    instruments: list[dict] = field(default_factory=list)
    volatility: float = 0.0
    tick_interval: float = 1.0
    fill_interval: float = 0.05
    liquidity: float | None = None
    hours: str = "always"
    outside_hours: str = "queue"
    holidays: frozenset[dt.date] = frozenset()
    early_closes: dict[dt.date, str] = field(default_factory=dict)
    fx: dict[str, float] = field(default_factory=dict)
    ack_delay: float = 0.0
    fill_delay: float = 0.0
    clock_start: dt.datetime | None = None
    clock_speed: float = 1.0
    faults: dict = field(default_factory=dict)
    source: str = "<scenario>"

    def build_universe(self) -> Universe:
        universe = Universe(builtin_universe())
        for spec in self.instruments:
            apply_instrument(universe, spec, self.source)
        return universe


def account_only(account_ids: list[str] | tuple[str, ...]) -> list[AccountSpec]:
    """Accounts named on the command line: 1,000,000 USD cash, no positions."""
    return [AccountSpec(account_id=a, cash={"USD": DEFAULT_CASH}) for a in account_ids]


def stable_con_id(symbol: str, currency: str, exchange: str) -> int:
    return 800_000_000 + zlib.crc32(f"{symbol}:{currency}:{exchange}".encode()) % 99_999_999


_INSTRUMENT_FIELDS = {
    "conId": "con_id",
    "primaryExchange": "primary_exchange",
    "currency": "currency",
    "price": "price",
    "spread": "spread",
    "minTick": "min_tick",
    "sizeIncrement": "size_increment",
    "liquidity": "liquidity",
    "volatility": "volatility",
    "longName": "long_name",
    "stockType": "stock_type",
    "timeZoneId": "time_zone_id",
}


def apply_instrument(universe: Universe, spec: dict, source: str) -> Instrument:
    """Override the matching built-in instrument, or add a new one."""
    symbol = spec["symbol"].upper()
    changes = {_INSTRUMENT_FIELDS[k]: v for k, v in spec.items() if k in _INSTRUMENT_FIELDS}
    if "regularHours" in spec:
        start, end = spec["regularHours"].split("-")
        changes["rth"] = (start, end)
    target = universe.get(spec["conId"]) if "conId" in spec else None
    if target is None and "conId" not in spec:
        candidates = universe.by_symbol(
            symbol, spec.get("currency", ""), spec.get("primaryExchange", "")
        )
        if len(candidates) == 1:
            target = candidates[0]
        elif len(candidates) > 1:
            listings = ", ".join(f"{c.primary_exchange}/{c.currency}" for c in candidates)
            raise ScenarioError(
                f"{source}: instrument {symbol}: matches several listings "
                f"({listings}); add currency, primaryExchange or conId"
            )
    if target is not None:
        for key, value in changes.items():
            setattr(target, key, value)
        if "price" in changes and "spread" not in changes:
            target.spread = None
            target.__post_init__()
        return target
    if "price" not in spec:
        raise ScenarioError(f"{source}: instrument {symbol}: a new instrument needs a price")
    changes.setdefault("primary_exchange", "NYSE")
    changes.setdefault("currency", "USD")
    changes.setdefault(
        "con_id", stable_con_id(symbol, changes["currency"], changes["primary_exchange"])
    )
    inst = Instrument(symbol=symbol, **changes)
    universe.add(inst)
    return inst


def schema_path() -> Path:
    """`schemas/` at the project root (editable install or checkout), else package data."""
    for candidate in (_PACKAGE_ROOT.parent / "schemas", _PACKAGE_ROOT / "schemas"):
        if (candidate / SCHEMA_NAME).is_file():
            return candidate / SCHEMA_NAME
    raise ScenarioError(
        f"{SCHEMA_NAME} not found next to the package ({_PACKAGE_ROOT.parent / 'schemas'})"
    )


@lru_cache(maxsize=1)
def _schema() -> dict:
    return json.loads(schema_path().read_text(encoding="utf-8"))


def load_scenario(source: str | Path | dict | None = None) -> Scenario:
    """Load and validate a scenario (path or mapping); None loads the built-in demo."""
    if source is None:
        source = DEMO_PATH
    if isinstance(source, dict):
        return _from_mapping(source, "<scenario>", None)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ScenarioError(f"{path}: scenario file not found") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read scenario file ({exc})") from exc
    data, root = _parse_yaml(text, str(path))
    return _from_mapping(data, str(path), root)


@lru_cache(maxsize=1)
def _loader():
    """A safe YAML loader that keeps dates and times as the text they look like.

    PyYAML (YAML 1.1) turns ``2026-01-19`` into a date object and ``13:00`` into the base-60
    integer 780; the schema describes both as strings, and an impossible date such as
    ``2026-02-30`` then gets the schema's error with its file and line.
    """
    import yaml

    class ScenarioLoader(yaml.SafeLoader):
        pass

    int_tag, timestamp_tag = "tag:yaml.org,2002:int", "tag:yaml.org,2002:timestamp"
    ScenarioLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in entries if tag not in (int_tag, timestamp_tag)]
        for first, entries in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    ScenarioLoader.add_implicit_resolver(
        int_tag,  # YAML 1.1 integers without the base-60 form
        re.compile(
            r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)"
            r"|[-+]?0x[0-9a-fA-F_]+)$"
        ),
        list("-+0123456789"),
    )
    return ScenarioLoader


def _parse_yaml(text: str, source: str):
    import yaml

    try:
        root = yaml.compose(text, Loader=_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ScenarioError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if root is None:
        raise ScenarioError(f"{source}:1: scenario file is empty")
    _reject_duplicate_keys(root, source)
    data = yaml.load(text, Loader=_loader())  # a SafeLoader subclass: plain data only
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}:1: a scenario is a mapping (name, accounts, ...)")
    return data, root


def _reject_duplicate_keys(node, source: str) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                raise ScenarioError(
                    f"{source}:{key_node.start_mark.line + 1}: duplicate key {key!r}"
                )
            seen.add(key)
            _reject_duplicate_keys(value_node, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, source)


def _line_of(root, path) -> int | None:
    import yaml

    node = root
    for part in path:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            found = next((v for k, v in node.value if k.value == part), None)
            if found is None:
                break
            node = found
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
        else:
            break
    return node.start_mark.line + 1 if node is not None else None


def _validate(data: dict, source: str, root) -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(
        _schema(), format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    if not errors:
        return
    lines = []
    for error in errors:
        path = list(error.absolute_path)
        pointer = "/" + "/".join(str(p) for p in path)
        line = _line_of(root, path) if root is not None else None
        where = f"{source}:{line}" if line else source
        lines.append(f"{where}: {pointer}: {_readable(error)}")
    raise ScenarioError("\n".join(lines))


def _readable(error) -> str:
    """The validator's message with the offending value as YAML/JSON text, not Python's repr
    (``true``, ``null``, ``"x"`` rather than ``True``, ``None``, ``'x'``)."""
    message = error.message
    shown = repr(error.instance)
    if message.startswith(shown):
        message = json.dumps(error.instance, default=str) + message[len(shown) :]
    return message


def _plain(value):
    """Dates and timestamps in a mapping given directly (not read by ``_loader``) as the ISO
    strings the schema describes, keys included: ``[dt.date(2026, 1, 19)]`` and
    ``["2026-01-19"]`` mean the same."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):  # datetime is a date too
        return value.isoformat()
    return value


def _from_mapping(data: dict, source: str, root) -> Scenario:
    data = _plain(data)
    _validate(data, source, root)
    market = data.get("market", {})
    latency = data.get("latency", {})
    clock = data.get("clock", {})
    accounts = []
    seen_accounts: set[str] = set()
    for spec in data.get("accounts", []):
        if spec["id"] in seen_accounts:
            raise ScenarioError(f"{source}: account {spec['id']} is listed twice")
        seen_accounts.add(spec["id"])
        base = spec.get("baseCurrency", "USD")
        accounts.append(
            AccountSpec(
                account_id=spec["id"],
                cash={k: float(v) for k, v in spec.get("cash", {base: 0.0}).items()},
                positions=tuple(
                    PositionSpec(
                        symbol=p["symbol"].upper(),
                        quantity=float(p["quantity"]),
                        avg_cost=p.get("avgCost"),
                        currency=p.get("currency", ""),
                        primary_exchange=p.get("primaryExchange", ""),
                        con_id=p.get("conId", 0),
                    )
                    for p in spec.get("positions", [])
                ),
                base_currency=base,
                account_type=spec.get("type", "cash"),
            )
        )
    start = None
    if "start" in clock:
        line = _line_of(root, ["clock", "start"]) if root is not None else None
        where = f"{source}:{line}" if line else source
        try:
            start = dt.datetime.fromisoformat(clock["start"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise ScenarioError(
                f"{where}: /clock/start: {json.dumps(clock['start'])} is not "
                f"an ISO 8601 date and time ({exc})"
            ) from exc
        if start.tzinfo is None:
            raise ScenarioError(f"{where}: /clock/start: needs a time zone (e.g. Z)")
    scenario = Scenario(
        name=data.get("name", Path(source).stem if source != "<scenario>" else "custom"),
        seed=data.get("seed", 0),
        accounts=accounts,
        instruments=list(data.get("instruments", [])),
        volatility=float(market.get("volatility", 0.0)),
        tick_interval=float(market.get("tickInterval", 1.0)),
        fill_interval=float(market.get("fillInterval", 0.05)),
        liquidity=market.get("liquidity"),
        hours=market.get("hours", "always"),
        outside_hours=market.get("outsideHours", "queue"),
        holidays=frozenset(dt.date.fromisoformat(d) for d in market.get("holidays", [])),
        early_closes={
            dt.date.fromisoformat(d): close for d, close in market.get("earlyCloses", {}).items()
        },
        fx={k: float(v) for k, v in market.get("fx", {}).items()},
        ack_delay=float(latency.get("ack", 0.0)),
        fill_delay=float(latency.get("fill", 0.0)),
        clock_start=start,
        clock_speed=float(clock.get("speed", 1.0)),
        faults=dict(data.get("faults", {})),
        source=source,
    )
    scenario.build_universe()  # surfaces instrument errors at load time
    return scenario
