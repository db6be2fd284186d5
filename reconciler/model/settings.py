"""Settings from the environment (12-factor), a `.env` file, and flags.

Responsible for
- the registry of every environment variable the reconciler honours (`ENV_VARS`);
- the frozen `Settings` value, with safe defaults (paper, orders disabled), read by
  `load_settings` (through pydantic-settings, in `reconciler.model.env_settings`, imported
  only when settings are loaded so that commands which need none stay fast) with clear errors
  naming the variable whose value does not parse. Precedence: flags (`with_overrides`) >
  process environment > `.env` file > defaults;
- the warnings a configuration deserves although it loads (`settings_warnings`): a variable
  that looks like one of ours but is not one (a typo that would otherwise be silently
  ignored), and an `EXEC_RISK_MAX_*` override that is set but not applied because the master
  switch `EXEC_RISK_ENABLED` is off.

Must not connect to anything, print, or decide policy: gates and risk read these values.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

ENV_VARS: dict[str, str] = {
    "IB_GATEWAY_HOST": "Gateway host (default 127.0.0.1).",
    "IB_GATEWAY_PORT": "Gateway API port (default 4002, IB Gateway paper).",
    "IB_CLIENT_ID": "API client id of apply and run (default 17).",
    "IB_READONLY_CLIENT_ID": "API client id of the read-only commands (plan, lock, health "
    "without --check-orders), so they never collide with a running daemon or apply "
    "(default 18).",
    "IB_OPERATOR_CLIENT_ID": "Client id of operator commands that act while an apply may be "
    "connected (`halt --cancel-open`); must differ from IB_CLIENT_ID (default 90).",
    "IB_MASTER_CLIENT_ID": "The gateway's configured master API client id, used by `halt "
    "--cancel-open` as a fallback to cancel orders whose owner does not (default unset).",
    "IB_CONNECT_TIMEOUT": "Seconds to wait for the connection and each request (default 10).",
    "RECONCILER_MAX_MSG_RATE": "Messages per second sent to the gateway, in any 1 s window "
    "(default 45; IB disconnects above 50).",
    "TRADING_MODE": "paper (default) or live.",
    "ORDERS_ENABLED": "true to let apply send orders (default false: dry run).",
    "LIVE_TRADING_OVERRIDE_FILE": "File that must exist for live trading.",
    "RECONCILER_ALLOWED_ACCOUNTS": "Comma-separated accounts apply may trade (empty = none for live).",
    "RECONCILER_REQUIRE_CLEAN_GIT": "true/false: paper apply needs committed, clean desired state (live always does).",
    "RECONCILER_DB_URL": "SQLAlchemy URL of the store (default SQLite file in the state directory).",
    "RECONCILER_STATE_DIR": "Working state directory: SQLite store, lock files, reports "
    "(default $STATE_DIRECTORY under systemd, else $XDG_STATE_HOME/ib-reconciler, i.e. "
    "~/.local/state/ib-reconciler; a ./.reconciler left by older versions is still used, "
    "with a warning, until it is moved).",
    "RECONCILER_REPORTS_DIR": "Where cycle reports go (default <state dir>/reports).",
    "RECONCILER_GIT_URL": "Git source: repository (URL, path or remote name) `run` fetches "
    "the desired state from before each cycle (default unset: the checkout is used as is).",
    "RECONCILER_GIT_BRANCH": "Git source: branch whose head every cycle applies (default main).",
    "RECONCILER_GIT_POLL": "Git source: true (default) fetches before every cycle; false only "
    "when `run` starts.",
    "RECONCILER_GIT_VERIFY": "Git source: true requires a trusted signature on the head "
    "commit (`git verify-commit`); live always requires it (default false).",
    "RECONCILER_RECONNECT_INITIAL_SECONDS": "run: first delay before retrying an unreachable gateway (default 1).",
    "RECONCILER_RECONNECT_MAX_SECONDS": "run: cap of the exponential reconnect delay (default 60).",
    "RECONCILER_RECONNECT_JITTER_SECONDS": "run: random extra added to each reconnect delay, up to (default 1).",
    "RECONCILER_SHUTDOWN_GRACE_SECONDS": "run: on SIGTERM, seconds to wait for in-flight acknowledgements (default 10).",
    "EXEC_RISK_ENABLED": "true applies the EXEC_RISK_MAX_* overrides below (default off; git "
    "limits always bind).",
    "EXEC_RISK_MAX_ORDER_NOTIONAL": "Tighter max notional per order (0 = no override).",
    "EXEC_RISK_MAX_POSITION_NOTIONAL": "Tighter max notional per position (0 = no override).",
    "EXEC_RISK_MAX_LEVERAGE": "Tighter max gross exposure / NAV (0 = no override).",
    "RECONCILER_PORTFOLIO_PRICE_MARGIN": "Steady state: skip the live quote of instruments "
    "inside their band even if the price moved this fraction from the portfolio's market "
    "price (e.g. 0.02); 0/empty (default): a live quote for every instrument.",
    "RECONCILER_IB_LIBRARY": "IB client library: ib_async (default) or ib_insync.",
    "IB_GATEWAY_TIMEZONE": "Zone of gateway timestamps that carry none (default UTC).",
    "RECONCILER_METRICS_FILE": "Prometheus textfile (node_exporter textfile collector) rewritten "
    "after every cycle (default unset: no file).",
    "RECONCILER_METRICS_PORT": "run (daemon): serve /metrics over HTTP on this port (default "
    "unset: no HTTP server).",
    "RECONCILER_METRICS_ADDRESS": "run (daemon): address the /metrics server binds (default "
    "127.0.0.1).",
    "RECONCILER_NOTIFY_URLS": "Apprise URLs notifications go to, separated by commas or spaces "
    "(default unset: no notification).",
    "RECONCILER_NOTIFY_EVENTS": "Events that notify, comma-separated: "
    "drift,refused,failed,denial,rejected,unknown,break,halt,resume (default all).",
    "RECONCILER_NOTIFY_REPEAT": "A persisting condition (same drift, denial, break, refusal or "
    "failure) notifies again only after this long: seconds or 30m/24h/7d (default 24h).",
    "RECONCILER_SERVE_TOKEN": "Bearer token `reconcile serve` requires on every request; "
    "needed to bind to anything but 127.0.0.1; environment only (default unset).",
    "RECONCILER_LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR: the least severe log line written "
    "to stderr (default INFO for `run` and JSON logs, WARNING for other commands in human "
    "format); read from the environment only, not from `.env`.",
    "RECONCILER_LOG_FORMAT": "human or json log lines on stderr (default: json under systemd "
    "when stderr is not a terminal, else human); read from the environment only.",
    "RECONCILER_REPORT_RETENTION": "Keep cycle report files for `30d` (days) or the newest "
    "`500` cycles; older report files this tool wrote are removed (default unset: keep all).",
    "RECONCILER_REPORT_NOTHING_TO_DO": "file (default) writes a report file for a cycle that "
    "had nothing to do; skip records it in the store only.",
}

# Read before settings are loaded, so a `.env` file cannot set them.
ENVIRONMENT_ONLY = ("RECONCILER_LOG_LEVEL", "RECONCILER_LOG_FORMAT", "RECONCILER_SERVE_TOKEN")

# Read by the test suite, not by the reconciler; known so that setting it is not warned about.
TEST_VARIABLES = ("RECONCILER_TEST_POSTGRES_URL",)
KNOWN_VARIABLES = frozenset(ENV_VARS) | frozenset(TEST_VARIABLES)

# A variable whose name starts like these is one of ours; anything else in the environment is
# someone else's (PATH, HOME, ...) unless its name is a near miss of one of ours.
PREFIXES = ("IB_", "EXEC_RISK_", "RECONCILER_", "ORDERS_", "TRADING_", "LIVE_")
# Their first words, for near misses such as ORDER_ or RECONCILE_ (not IB: IBM_ is not ours).
_PREFIX_WORDS = tuple(w for w in (p.split("_")[0] for p in PREFIXES) if len(w) > 2)

RISK_SWITCH = "EXEC_RISK_ENABLED"
RISK_OVERRIDES = (
    "EXEC_RISK_MAX_ORDER_NOTIONAL",
    "EXEC_RISK_MAX_POSITION_NOTIONAL",
    "EXEC_RISK_MAX_LEVERAGE",
)

# Operator commands (`halt --cancel-open`) must not take the client id of the apply or daemon
# they may have to stop: that id is in use (error 326) while it runs.
DEFAULT_OPERATOR_CLIENT_ID = 90
# Read-only commands (plan, lock, health) must not take the daemon's or apply's id either: a
# `plan` during a scheduled cycle would otherwise fail with error 326 (id in use).
DEFAULT_READONLY_CLIENT_ID = 18
# Where versions before 0.x kept their state: in the directory the command ran in.
LEGACY_STATE_DIR = ".reconciler"
APP_NAME = "ib-reconciler"


def default_state_dir(environ: Mapping[str, str], legacy_exists: bool) -> tuple[str, str | None]:
    """The state directory when RECONCILER_STATE_DIR is not set, and a warning when the
    legacy ./.reconciler decides it (pure: `legacy_exists` says whether it is there).

    systemd's StateDirectory= ($STATE_DIRECTORY, the first of a colon-separated list) first;
    then a ./.reconciler left by an older version, so that an existing ledger is never
    silently replaced by an empty one; then $XDG_STATE_HOME/ib-reconciler (default
    ~/.local/state/ib-reconciler).
    """
    systemd = (environ.get("STATE_DIRECTORY") or "").split(":")[0].strip()
    if systemd:
        return systemd, None
    xdg = (environ.get("XDG_STATE_HOME") or "").strip()
    home = (environ.get("HOME") or "").strip() or str(Path.home())
    preferred = str(Path(xdg) / APP_NAME) if xdg else str(Path(home, ".local", "state", APP_NAME))
    if legacy_exists:
        return LEGACY_STATE_DIR, (
            f"using the state in ./{LEGACY_STATE_DIR} (the location of older versions); move "
            f"it with `mkdir -p {Path(preferred).parent} && mv {LEGACY_STATE_DIR} {preferred}`, "
            f"or set RECONCILER_STATE_DIR={LEGACY_STATE_DIR} to keep it there"
        )
    return preferred, None

# The events `RECONCILER_NOTIFY_EVENTS` chooses from (reconciler.observe.notify sends them).
NOTIFY_EVENTS = (
    "drift",
    "refused",
    "failed",
    "denial",
    "rejected",
    "unknown",
    "break",
    "halt",
    "resume",
)
DEFAULT_NOTIFY_REPEAT_SECONDS = 24 * 3600.0
_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(name: str, raw: str) -> float:
    """Seconds from `90`, `90s`, `30m`, `24h` or `7d`; SettingsError naming `name` otherwise."""
    text = raw.strip().lower()
    unit = _DURATION_UNITS.get(text[-1:]) if text else None
    number = text[:-1] if unit is not None else text
    try:
        value = float(number) * (unit or 1.0)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a duration (e.g. 3600, 30m, 24h, 7d)") from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise SettingsError(f"{name}={raw!r} must be a finite duration >= 0")
    return value


def parse_notify_events(raw: str) -> tuple[str, ...]:
    """The events named in `RECONCILER_NOTIFY_EVENTS` (`all` or empty: every event)."""
    words = [w.strip().lower() for w in raw.replace(" ", ",").split(",") if w.strip()]
    if not words or words == ["all"]:
        return NOTIFY_EVENTS
    unknown = [w for w in words if w not in NOTIFY_EVENTS]
    if unknown:
        raise SettingsError(
            f"RECONCILER_NOTIFY_EVENTS={raw!r}: unknown event(s) {', '.join(unknown)}; "
            f"choose from {','.join(NOTIFY_EVENTS)} (or all)"
        )
    return tuple(e for e in NOTIFY_EVENTS if e in words)


def split_urls(raw: str) -> tuple[str, ...]:
    """Apprise URLs separated by commas, spaces or newlines."""
    return tuple(u for u in raw.replace(",", " ").split() if u)


TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """An environment variable or flag has a value that does not parse; names the variable."""


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean (use true or false)")


def parse_int(name: str, raw: str | None, default: int) -> int:
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None


def _optional_int(name: str, raw: str | None) -> int | None:
    if raw is None or raw.strip() == "":
        return None
    return parse_int(name, raw, 0)


def parse_float(name: str, raw: str | None) -> float | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise SettingsError(f"{name}={raw!r} must be a finite number >= 0")
    return value


@dataclass(frozen=True)
class ReportRetention:
    """How many report files to keep: those of the last `days` days, or of the newest
    `count` cycles (RECONCILER_REPORT_RETENTION `30d` or `500`)."""

    days: int | None = None
    count: int | None = None

    def render(self) -> str:
        return f"{self.days}d" if self.days is not None else str(self.count)


def parse_retention(name: str, raw: str | None) -> ReportRetention | None:
    """`30d` (days) or `500` (cycles); unset or blank: None (keep everything)."""
    if raw is None or not raw.strip():
        return None
    text = raw.strip().lower()
    days = text.endswith("d")
    number = text[:-1] if days else text
    if not number.isdigit() or int(number) < 1:
        raise SettingsError(
            f"{name}={raw!r}: expected a number of days such as 30d or a number of cycles "
            "such as 500 (at least 1)"
        )
    return ReportRetention(days=int(number)) if days else ReportRetention(count=int(number))


@dataclass(frozen=True)
class Settings:
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 4002
    client_id: int = 17
    operator_client_id: int = DEFAULT_OPERATOR_CLIENT_ID
    readonly_client_id: int = DEFAULT_READONLY_CLIENT_ID
    master_client_id: int | None = None
    connect_timeout: float = 10.0
    max_msg_rate: float = 45.0
    trading_mode: str = "paper"
    orders_enabled: bool = False
    live_override_file: str | None = None
    allowed_accounts: tuple[str, ...] = ()
    require_clean_git: bool = False
    state_dir: str = ".reconciler"
    db_url: str | None = None
    reports_dir: str | None = None
    git_url: str | None = None
    git_branch: str = "main"
    git_poll: bool = True
    git_verify: bool = False
    metrics_file: str | None = None
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"
    notify_urls: tuple[str, ...] = ()
    notify_events: tuple[str, ...] = NOTIFY_EVENTS
    notify_repeat_seconds: float = DEFAULT_NOTIFY_REPEAT_SECONDS
    report_retention: ReportRetention | None = None
    report_nothing_to_do: str = "file"  # file | skip
    # Steady state (decide.steady): live quotes only for instruments not clearly inside their
    # band by this margin around the portfolio market price; None = a quote for every one.
    portfolio_price_margin: float | None = None
    risk_env: Mapping[str, str] = field(default_factory=dict)
    # Found while reading the environment and `.env` (unknown variables); see settings_warnings.
    load_warnings: tuple[str, ...] = ()

    @property
    def is_live(self) -> bool:
        return self.trading_mode == "live"

    @property
    def effective_db_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{Path(self.state_dir).resolve() / 'reconciler.db'}"

    @property
    def effective_reports_dir(self) -> str:
        return self.reports_dir or str(Path(self.state_dir) / "reports")

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def read_dotenv(path: str | os.PathLike[str] = ".env") -> dict[str, str]:
    """The `.env` file's variables (empty when there is none); values never override the
    real environment."""
    p = Path(path)
    if not p.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(p).items() if v is not None}


# What a connection to the gateway needs: `apply` reads these first (`connection_fields`)
# and connects while the rest is read, then checks them against the full read.
CONNECTION_FIELDS = (
    "gateway_host",
    "gateway_port",
    "client_id",
    "connect_timeout",
    "max_msg_rate",
    "orders_enabled",
)


def connection_fields(
    environ: Mapping[str, str], dotenv: Mapping[str, str]
) -> dict[str, Any] | None:
    """The `CONNECTION_FIELDS` of `Settings` from `environ` over `dotenv`, with the parsers
    and defaults `load_settings` applies to them, but without loading pydantic (about 0.15 s
    of start-up). None when a value is not plainly valid: `load_settings` then says why.
    Callers check the result against `load_settings` (`connection_mismatch`)."""

    def raw(name: str) -> str | None:
        # As the full read: a variable in the environment, even empty, beats `.env`.
        return environ[name] if name in environ else dotenv.get(name)

    # The defaults are the `Settings` dataclass's own, so the two reads cannot disagree on them.
    default = Settings
    host = raw("IB_GATEWAY_HOST")
    try:
        port = parse_int("IB_GATEWAY_PORT", raw("IB_GATEWAY_PORT"), default.gateway_port)
        client_id = parse_int("IB_CLIENT_ID", raw("IB_CLIENT_ID"), default.client_id)
        timeout = (
            parse_float("IB_CONNECT_TIMEOUT", raw("IB_CONNECT_TIMEOUT"))
            or default.connect_timeout
        )
        rate = (
            parse_float("RECONCILER_MAX_MSG_RATE", raw("RECONCILER_MAX_MSG_RATE"))
            or default.max_msg_rate
        )
        orders_enabled = parse_bool(
            "ORDERS_ENABLED", raw("ORDERS_ENABLED"), default.orders_enabled
        )
    except SettingsError:
        return None
    if not 1 <= port <= 65535 or rate > 50:
        return None
    return {
        "gateway_host": host.strip() if host and host.strip() else default.gateway_host,
        "gateway_port": port,
        "client_id": client_id,
        "connect_timeout": timeout,
        "max_msg_rate": rate,
        "orders_enabled": orders_enabled,
    }


def connection_mismatch(connected: Settings, full: Settings) -> str | None:
    """Which connection setting the full read gives differently (the environment or `.env`
    changed between the two reads), or None."""
    changed = [
        f"{name} {getattr(connected, name)!r} -> {getattr(full, name)!r}"
        for name in CONNECTION_FIELDS
        if getattr(connected, name) != getattr(full, name)
    ]
    if not changed:
        return None
    return (
        "the gateway settings changed while apply was starting ("
        + "; ".join(changed)
        + "); run it again"
    )


def load_settings(
    environ: Mapping[str, str] | None = None, dotenv_path: str | None = ".env"
) -> Settings:
    """Settings from `environ` (default: the process environment) over the `.env` file at
    `dotenv_path` (None: no file) over the defaults. `SettingsError` names each variable whose
    value does not parse."""
    from reconciler.model.env_settings import read_environment

    return read_environment(os.environ if environ is None else environ, dotenv_path)


# ---------------------------------------------------------------- warnings


def _looks_like_ours(name: str) -> bool:
    upper = name.upper()
    if upper in KNOWN_VARIABLES or upper.startswith(PREFIXES):
        return True
    # Loosely: ORDER_ENABLED (not ORDERS_), RECONCILE_STATE_DIR, EXEC_RISK_ENABLE, ...
    first = upper.split("_", 1)[0]
    if difflib.get_close_matches(first, _PREFIX_WORDS, n=1, cutoff=0.8):
        return True
    return bool(difflib.get_close_matches(upper, KNOWN_VARIABLES, n=1, cutoff=0.8))


def closest_known(name: str) -> str | None:
    """The known variable `name` was most likely meant to be, if any is close."""
    upper = name.upper()
    if upper in KNOWN_VARIABLES:
        return upper
    match = difflib.get_close_matches(upper, sorted(KNOWN_VARIABLES), n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_variable_warnings(
    environ: Iterable[str], dotenv: Iterable[str] = (), *, dotenv_name: str = ".env"
) -> list[str]:
    """One warning per variable that looks like one of ours (our prefixes, or a near miss of
    a known name) but is not one, naming the closest known variable. `environ` and `dotenv`
    are the names set in the process environment and in the `.env` file. (pure)"""
    in_environ = set(environ)
    in_dotenv = set(dotenv)
    warnings = []
    for name in sorted(in_environ | in_dotenv):
        if name in ENVIRONMENT_ONLY and name not in in_environ:
            warnings.append(
                f"{name} (in {dotenv_name}) has no effect there: it is read from the "
                "environment only"
            )
            continue
        if name in KNOWN_VARIABLES or not _looks_like_ours(name):
            continue
        where = "in the environment" if name in in_environ else f"in {dotenv_name}"
        guess = closest_known(name)
        if guess is not None and guess == name.upper():
            hint = f"variable names are case-sensitive: did you mean {guess}?"
        elif guess is not None:
            hint = f"did you mean {guess}?"
        else:
            hint = "see .env.example for the variables it reads"
        warnings.append(
            f"{name} ({where}) is not a variable ib-reconciler reads, so it has no effect; {hint}"
        )
    return warnings


def unapplied_risk_overrides(risk_env: Mapping[str, str]) -> list[tuple[str, str]]:
    """(variable, value) of each `EXEC_RISK_MAX_*` set to a limit (not empty, not 0) while
    the master switch `EXEC_RISK_ENABLED` is off. Values that do not parse are left to
    `decide.risk.effective_limits`, which refuses them naming the variable. (pure)"""
    try:
        if parse_bool(RISK_SWITCH, risk_env.get(RISK_SWITCH), False):
            return []
    except SettingsError:
        return []
    unapplied = []
    for variable in RISK_OVERRIDES:
        raw = risk_env.get(variable)
        try:
            value = parse_float(variable, raw)
        except SettingsError:
            continue
        if value:
            unapplied.append((variable, raw.strip()))
    return unapplied


def unapplied_override_warning(variable: str, raw: str, switch: str | None = None) -> str:
    """The warning for one override that is set but not applied; `switch` is the master
    switch's value as written (None or blank: unset)."""
    state = (
        f"{RISK_SWITCH}={switch.strip()}"
        if switch and switch.strip()
        else f"{RISK_SWITCH} is unset"
    )
    return (
        f"{variable}={raw} is set but NOT applied: {state}, so the override is off and only "
        f"the limits in git bind; set {RISK_SWITCH}=true to apply it, or unset {variable}"
    )


def settings_warnings(settings: Settings) -> list[str]:
    """Everything about this configuration an operator must hear about although it loads:
    unknown variables (typos) and risk overrides that are set but not applied. Plan, apply
    and the cycle report carry these, every time. (pure)"""
    return [
        *settings.load_warnings,
        *(
            unapplied_override_warning(variable, raw, settings.risk_env.get(RISK_SWITCH))
            for variable, raw in unapplied_risk_overrides(settings.risk_env)
        ),
    ]
