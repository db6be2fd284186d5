"""Settings from the environment (12-factor), a `.env` file, and flags.

Responsible for reading every environment variable the reconciler honours into one frozen
`Settings` value, with safe defaults (paper, orders disabled) and clear errors for values
that do not parse. Precedence: flags > process environment > `.env` file > defaults. Must
not connect to anything or decide policy: gates and risk read these values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

ENV_VARS: dict[str, str] = {
    "IB_GATEWAY_HOST": "Gateway host (default 127.0.0.1).",
    "IB_GATEWAY_PORT": "Gateway API port (default 4002, IB Gateway paper).",
    "IB_CLIENT_ID": "API client id (default 17).",
    "IB_OPERATOR_CLIENT_ID": "Client id of operator commands that act while an apply may be "
    "connected (`halt --cancel-open`); must differ from IB_CLIENT_ID (default 90).",
    "IB_MASTER_CLIENT_ID": "The gateway's configured master API client id, used by `halt "
    "--cancel-open` as a fallback to cancel orders whose owner does not (default unset).",
    "IB_CONNECT_TIMEOUT": "Seconds to wait for the connection and each request (default 10).",
    "TRADING_MODE": "paper (default) or live.",
    "ORDERS_ENABLED": "true to let apply send orders (default false: dry run).",
    "LIVE_TRADING_OVERRIDE_FILE": "File that must exist for live trading.",
    "RECONCILER_ALLOWED_ACCOUNTS": "Comma-separated accounts apply may trade (empty = none for live).",
    "RECONCILER_REQUIRE_CLEAN_GIT": "true/false: paper apply needs committed, clean desired state (live always does).",
    "RECONCILER_DB_URL": "SQLAlchemy URL of the store (default SQLite file in the state directory).",
    "RECONCILER_STATE_DIR": "Working state directory (default .reconciler).",
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
    "EXEC_RISK_ENABLED": "false disables the EXEC_RISK_* overrides below (git limits still bind).",
    "EXEC_RISK_MAX_ORDER_NOTIONAL": "Tighter max notional per order (0 = no override).",
    "EXEC_RISK_MAX_POSITION_NOTIONAL": "Tighter max notional per position (0 = no override).",
    "EXEC_RISK_MAX_LEVERAGE": "Tighter max gross exposure / NAV (0 = no override).",
}

# Operator commands (`halt --cancel-open`) must not take the client id of the apply or daemon
# they may have to stop: that id is in use (error 326) while it runs.
DEFAULT_OPERATOR_CLIENT_ID = 90

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
class Settings:
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 4002
    client_id: int = 17
    operator_client_id: int = DEFAULT_OPERATOR_CLIENT_ID
    master_client_id: int | None = None
    connect_timeout: float = 10.0
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
    risk_env: Mapping[str, str] = field(default_factory=dict)

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


def load_settings(
    environ: Mapping[str, str] | None = None, dotenv_path: str | None = ".env"
) -> Settings:
    env: dict[str, str] = {}
    if dotenv_path:
        env.update(read_dotenv(dotenv_path))
    env.update(os.environ if environ is None else environ)

    mode = env.get("TRADING_MODE", "paper").strip().lower() or "paper"
    if mode not in ("paper", "live"):
        raise SettingsError(f"TRADING_MODE={mode!r} must be paper or live")
    timeout = parse_float("IB_CONNECT_TIMEOUT", env.get("IB_CONNECT_TIMEOUT"))
    allowed = tuple(
        a.strip() for a in env.get("RECONCILER_ALLOWED_ACCOUNTS", "").split(",") if a.strip()
    )
    risk_env = {k: v for k, v in env.items() if k.startswith("EXEC_RISK_")}
    return Settings(
        gateway_host=env.get("IB_GATEWAY_HOST", "127.0.0.1").strip() or "127.0.0.1",
        gateway_port=parse_int("IB_GATEWAY_PORT", env.get("IB_GATEWAY_PORT"), 4002),
        client_id=parse_int("IB_CLIENT_ID", env.get("IB_CLIENT_ID"), 17),
        operator_client_id=parse_int(
            "IB_OPERATOR_CLIENT_ID", env.get("IB_OPERATOR_CLIENT_ID"), DEFAULT_OPERATOR_CLIENT_ID
        ),
        master_client_id=_optional_int("IB_MASTER_CLIENT_ID", env.get("IB_MASTER_CLIENT_ID")),
        connect_timeout=timeout if timeout else 10.0,
        trading_mode=mode,
        orders_enabled=parse_bool("ORDERS_ENABLED", env.get("ORDERS_ENABLED"), False),
        live_override_file=env.get("LIVE_TRADING_OVERRIDE_FILE") or None,
        allowed_accounts=allowed,
        require_clean_git=parse_bool(
            "RECONCILER_REQUIRE_CLEAN_GIT", env.get("RECONCILER_REQUIRE_CLEAN_GIT"), False
        ),
        state_dir=env.get("RECONCILER_STATE_DIR", ".reconciler") or ".reconciler",
        db_url=env.get("RECONCILER_DB_URL") or None,
        reports_dir=env.get("RECONCILER_REPORTS_DIR") or None,
        git_url=env.get("RECONCILER_GIT_URL", "").strip() or None,
        git_branch=env.get("RECONCILER_GIT_BRANCH", "").strip() or "main",
        git_poll=parse_bool("RECONCILER_GIT_POLL", env.get("RECONCILER_GIT_POLL"), True),
        git_verify=parse_bool("RECONCILER_GIT_VERIFY", env.get("RECONCILER_GIT_VERIFY"), False),
        risk_env=risk_env,
    )
