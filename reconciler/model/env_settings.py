"""Reading the environment and `.env` into `Settings`, through pydantic-settings.

Responsible for the declared, typed form of every variable `Settings` holds (`Environment`),
the two sources it is read from (the process environment, or a mapping given instead, over
the `.env` file) and turning what pydantic reports into one `SettingsError` that names each
variable whose value does not parse (and says when it came from `.env`). The quirks of the
variables are kept exactly: an empty or blank value means the default (an empty
`ORDERS_ENABLED` in the environment still beats `ORDERS_ENABLED=true` in `.env`: it means
false), booleans are true/false/yes/no/on/off/1/0, `IB_CONNECT_TIMEOUT=0` means the default.

Imported only by `settings.load_settings`: pydantic costs a few hundred milliseconds to
import, which commands that load no settings (`validate`) must not pay. Must not connect to
anything, print, or decide policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError
from pydantic_core import PydanticUseDefault
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from reconciler.model.settings import (
    DEFAULT_NOTIFY_REPEAT_SECONDS,
    DEFAULT_OPERATOR_CLIENT_ID,
    DEFAULT_READONLY_CLIENT_ID,
    LEGACY_STATE_DIR,
    NOTIFY_EVENTS,
    ReportRetention,
    Settings,
    SettingsError,
    default_state_dir,
    parse_bool,
    parse_duration,
    parse_float,
    parse_int,
    parse_notify_events,
    parse_retention,
    split_urls,
    unknown_variable_warnings,
)


def _blank_is_default(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        raise PydanticUseDefault()
    return value


def _empty_is_default(value: Any) -> Any:
    # Paths and URLs are taken as written; only an empty value falls back to the default.
    if value == "":
        raise PydanticUseDefault()
    return value


def _integer(variable: str):
    def parse(value: Any) -> Any:
        value = _blank_is_default(value)
        return parse_int(variable, value, 0) if isinstance(value, str) else value

    return BeforeValidator(parse)


def _boolean(variable: str):
    # Not pydantic's bool: "" means false here (and `t`/`y` are not accepted).
    def parse(value: Any) -> Any:
        return parse_bool(variable, value, False) if isinstance(value, str) else value

    return BeforeValidator(parse)


def _timeout(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    seconds = parse_float("IB_CONNECT_TIMEOUT", value)
    if not seconds:  # unset, blank or 0: the default
        raise PydanticUseDefault()
    return seconds


def _msg_rate(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    rate = parse_float("RECONCILER_MAX_MSG_RATE", value)
    if not rate:  # unset, blank or 0: the default
        raise PydanticUseDefault()
    if rate > 50:
        raise SettingsError(
            f"RECONCILER_MAX_MSG_RATE={value!r} must be at most 50 (IB disconnects a client "
            "that sends more than 50 messages in a second)"
        )
    return rate


def _price_margin(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    margin = parse_float("RECONCILER_PORTFOLIO_PRICE_MARGIN", value)
    if not margin:  # unset, blank or 0: off (a live quote for every instrument)
        raise PydanticUseDefault()
    if not 0 < margin < 1:
        raise SettingsError(
            f"RECONCILER_PORTFOLIO_PRICE_MARGIN={value.strip()!r} must be a fraction between 0 "
            "and 1 (0.02 = 2%), or 0/empty for a live quote for every instrument"
        )
    return margin


def _trading_mode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    mode = value.strip().lower()
    if not mode:
        raise PydanticUseDefault()
    if mode not in ("paper", "live"):
        raise SettingsError(f"TRADING_MODE={mode!r} must be paper or live")
    return mode


def _retention(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return parse_retention("RECONCILER_REPORT_RETENTION", value)


def _nothing_to_do(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    word = value.strip().lower()
    if not word:
        raise PydanticUseDefault()
    if word not in ("file", "skip"):
        raise SettingsError(f"RECONCILER_REPORT_NOTHING_TO_DO={value!r} must be file or skip")
    return word


def _accounts(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    return tuple(a.strip() for a in value.split(",") if a.strip())


def _host(value: Any) -> Any:
    value = _blank_is_default(value)
    return value.strip() if isinstance(value, str) else value


def _urls(value: Any) -> Any:
    return split_urls(value) if isinstance(value, str) else value


def _notify_events(value: Any) -> Any:
    return parse_notify_events(value) if isinstance(value, str) else value


def _notify_repeat(value: Any) -> Any:
    value = _blank_is_default(value)
    return parse_duration("RECONCILER_NOTIFY_REPEAT", value) if isinstance(value, str) else value


class Environment(BaseSettings):
    """Every variable `Settings` holds, as pydantic-settings reads it: exact (case-sensitive)
    names, unknown names ignored here (`settings.unknown_variable_warnings` reports them)."""

    model_config = SettingsConfigDict(
        case_sensitive=True, extra="ignore", env_ignore_empty=False, frozen=True
    )

    gateway_host: Annotated[str, BeforeValidator(_host)] = Field(
        "127.0.0.1", validation_alias="IB_GATEWAY_HOST"
    )
    gateway_port: Annotated[int, _integer("IB_GATEWAY_PORT")] = Field(
        4002, ge=1, le=65535, validation_alias="IB_GATEWAY_PORT"
    )
    client_id: Annotated[int, _integer("IB_CLIENT_ID")] = Field(17, validation_alias="IB_CLIENT_ID")
    operator_client_id: Annotated[int, _integer("IB_OPERATOR_CLIENT_ID")] = Field(
        DEFAULT_OPERATOR_CLIENT_ID, validation_alias="IB_OPERATOR_CLIENT_ID"
    )
    readonly_client_id: Annotated[int, _integer("IB_READONLY_CLIENT_ID")] = Field(
        DEFAULT_READONLY_CLIENT_ID, validation_alias="IB_READONLY_CLIENT_ID"
    )
    master_client_id: Annotated[int | None, _integer("IB_MASTER_CLIENT_ID")] = Field(
        None, validation_alias="IB_MASTER_CLIENT_ID"
    )
    connect_timeout: Annotated[float, BeforeValidator(_timeout)] = Field(
        10.0, validation_alias="IB_CONNECT_TIMEOUT"
    )
    max_msg_rate: Annotated[float, BeforeValidator(_msg_rate)] = Field(
        45.0, gt=0, le=50, validation_alias="RECONCILER_MAX_MSG_RATE"
    )
    trading_mode: Annotated[Literal["paper", "live"], BeforeValidator(_trading_mode)] = Field(
        "paper", validation_alias="TRADING_MODE"
    )
    orders_enabled: Annotated[bool, _boolean("ORDERS_ENABLED")] = Field(
        False, validation_alias="ORDERS_ENABLED"
    )
    live_override_file: Annotated[str | None, BeforeValidator(_empty_is_default)] = Field(
        None, validation_alias="LIVE_TRADING_OVERRIDE_FILE"
    )
    allowed_accounts: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_accounts)] = Field(
        (), validation_alias="RECONCILER_ALLOWED_ACCOUNTS"
    )
    require_clean_git: Annotated[bool, _boolean("RECONCILER_REQUIRE_CLEAN_GIT")] = Field(
        False, validation_alias="RECONCILER_REQUIRE_CLEAN_GIT"
    )
    state_dir: Annotated[str | None, BeforeValidator(_empty_is_default)] = Field(
        None, validation_alias="RECONCILER_STATE_DIR"
    )
    db_url: Annotated[str | None, BeforeValidator(_empty_is_default)] = Field(
        None, validation_alias="RECONCILER_DB_URL"
    )
    reports_dir: Annotated[str | None, BeforeValidator(_empty_is_default)] = Field(
        None, validation_alias="RECONCILER_REPORTS_DIR"
    )
    git_url: Annotated[str | None, BeforeValidator(_host)] = Field(
        None, validation_alias="RECONCILER_GIT_URL"
    )
    git_branch: Annotated[str, BeforeValidator(_host)] = Field(
        "main", validation_alias="RECONCILER_GIT_BRANCH"
    )
    git_poll: Annotated[bool, _boolean("RECONCILER_GIT_POLL")] = Field(
        True, validation_alias="RECONCILER_GIT_POLL"
    )
    git_verify: Annotated[bool, _boolean("RECONCILER_GIT_VERIFY")] = Field(
        False, validation_alias="RECONCILER_GIT_VERIFY"
    )
    metrics_file: Annotated[str | None, BeforeValidator(_empty_is_default)] = Field(
        None, validation_alias="RECONCILER_METRICS_FILE"
    )
    metrics_port: Annotated[int | None, _integer("RECONCILER_METRICS_PORT")] = Field(
        None, ge=1, le=65535, validation_alias="RECONCILER_METRICS_PORT"
    )
    metrics_address: Annotated[str, BeforeValidator(_host)] = Field(
        "127.0.0.1", validation_alias="RECONCILER_METRICS_ADDRESS"
    )
    notify_urls: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_urls)] = Field(
        (), validation_alias="RECONCILER_NOTIFY_URLS"
    )
    notify_events: Annotated[tuple[str, ...], NoDecode, BeforeValidator(_notify_events)] = Field(
        NOTIFY_EVENTS, validation_alias="RECONCILER_NOTIFY_EVENTS"
    )
    notify_repeat_seconds: Annotated[float, BeforeValidator(_notify_repeat)] = Field(
        DEFAULT_NOTIFY_REPEAT_SECONDS, validation_alias="RECONCILER_NOTIFY_REPEAT"
    )

    report_retention: Annotated[ReportRetention | None, BeforeValidator(_retention)] = Field(
        None, validation_alias="RECONCILER_REPORT_RETENTION"
    )
    report_nothing_to_do: Annotated[Literal["file", "skip"], BeforeValidator(_nothing_to_do)] = (
        Field("file", validation_alias="RECONCILER_REPORT_NOTHING_TO_DO")
    )
    portfolio_price_margin: Annotated[float | None, BeforeValidator(_price_margin)] = Field(
        None, validation_alias="RECONCILER_PORTFOLIO_PRICE_MARGIN"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Earlier sources win. `read_environment` hands in the sources it built, so that it
        # can also see every name they hold; flags are applied afterwards (with_overrides).
        given = _SOURCES.get()
        if given is not None:
            return given
        return env_settings, dotenv_settings


# The sources of the `read_environment` call in progress (a context variable, not a class
# attribute, so that concurrent reads cannot see each other's).
_SOURCES: ContextVar[tuple[PydanticBaseSettingsSource, ...] | None] = ContextVar(
    "reconciler_settings_sources", default=None
)


class _GivenEnvironment(EnvSettingsSource):
    """Environment variables from a given mapping (the process environment, or a test's)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._given = dict(environ)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._given


def read_environment(environ: Mapping[str, str], dotenv_path: str | None) -> Settings:
    """`Settings` from `environ` over the `.env` file at `dotenv_path` over the defaults."""
    environment = _GivenEnvironment(Environment, environ)
    try:
        dotenv = DotEnvSettingsSource(Environment, env_file=dotenv_path)
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read the settings file {dotenv_path}: {exc}") from None
    dotenv_vars = {k: v for k, v in dotenv.env_vars.items() if v is not None}
    token = _SOURCES.set((environment, dotenv))
    try:
        values = Environment()
    except ValidationError as exc:
        raise SettingsError(_explain(exc, environ, dotenv_vars, dotenv_path)) from None
    finally:
        _SOURCES.reset(token)
    # EXEC_RISK_* are kept as written: decide.risk.effective_limits parses them where they
    # bind, so that a bad override stops plan and apply but never an operator's halt.
    merged = {**dotenv_vars, **environ}
    fields = values.model_dump()
    fields["report_retention"] = values.report_retention  # a value, not its dict
    warnings = unknown_variable_warnings(environ, dotenv_vars, dotenv_name=str(dotenv_path))
    if fields["state_dir"] is None:
        fields["state_dir"], moved = default_state_dir(
            environ, Path(LEGACY_STATE_DIR).is_dir()
        )
        warnings += [moved] if moved else []
    return Settings(
        **fields,
        risk_env={k: v for k, v in merged.items() if k.startswith("EXEC_RISK_")},
        load_warnings=tuple(warnings),
    )


def _explain(
    exc: ValidationError,
    environ: Mapping[str, str],
    dotenv_vars: Mapping[str, str],
    dotenv_path: str | None,
) -> str:
    """One line per bad variable, each naming it (and `.env` when the value came from it)."""
    problems = []
    for error in exc.errors(include_url=False):
        variable = str(error["loc"][0]) if error["loc"] else "?"
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, SettingsError):
            text = str(cause)
        else:
            raw = environ.get(variable, dotenv_vars.get(variable))
            text = f"{variable}={raw!r}: {error['msg']}"
        if variable not in environ and variable in dotenv_vars:
            text += f" (set in {dotenv_path})"
        problems.append(text)
    return "; ".join(problems)
