"""Safety gates: the checks that must all pass before apply sends its first order.

Responsible for evaluating each gate of the safety model (README, ARCHITECTURE.md) as a small pure function over
values (settings, the desired state's git facts, the gateway's managed accounts, the halt
switch, trading states) and returning every result, passed or refused, so the cycle report
shows all of them. Must not read the environment, touch files other than checking that the
live override file exists, talk to the broker, or print.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reconciler.model.accounts import is_paper_account
from reconciler.model.settings import Settings


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    detail: str

    def render(self) -> str:
        return f"{'PASS' if self.passed else 'REFUSED'} {self.name}: {self.detail}"


@dataclass(frozen=True)
class GateInputs:
    settings: Settings
    accounts: Sequence[str]  # accounts the cycle would trade
    managed_accounts: Sequence[str] | None  # reported by the gateway (None: not connected yet)
    git_commit: str | None
    git_dirty: bool | None
    halt_reason: str | None
    trading_states: Mapping[str, str]  # account -> effective trading state from git
    file_exists: Callable[[str], bool] = lambda p: Path(p).expanduser().is_file()
    git_problem: str | None = None  # why git would not read the desired state, if it refused


def gate_trading_mode(i: GateInputs) -> GateResult:
    mode = i.settings.trading_mode
    return GateResult("TRADING_MODE", mode in ("paper", "live"), f"mode={mode}")


def gate_orders_enabled(i: GateInputs) -> GateResult:
    # Not a refusal: with orders disabled apply runs as a full dry run and says so.
    enabled = i.settings.orders_enabled
    return GateResult(
        "ORDERS_ENABLED",
        True,
        "orders enabled" if enabled else "ORDERS_ENABLED is false: dry run, nothing will be sent",
    )


def gate_live_override_file(i: GateInputs) -> GateResult:
    if not i.settings.is_live:
        return GateResult("LIVE_TRADING_OVERRIDE_FILE", True, "not required in paper mode")
    path = i.settings.live_override_file
    if not path:
        return GateResult(
            "LIVE_TRADING_OVERRIDE_FILE", False, "live mode needs LIVE_TRADING_OVERRIDE_FILE set"
        )
    if not i.file_exists(path):
        return GateResult(
            "LIVE_TRADING_OVERRIDE_FILE", False, f"override file {path} does not exist"
        )
    return GateResult("LIVE_TRADING_OVERRIDE_FILE", True, f"override file {path} present")


def gate_allowed_accounts(i: GateInputs) -> GateResult:
    allowed = set(i.settings.allowed_accounts)
    if not allowed:
        if i.settings.is_live:
            return GateResult(
                "RECONCILER_ALLOWED_ACCOUNTS", False, "live mode needs RECONCILER_ALLOWED_ACCOUNTS"
            )
        return GateResult("RECONCILER_ALLOWED_ACCOUNTS", True, "no allowlist set (paper)")
    outside = [a for a in i.accounts if a not in allowed]
    if outside:
        return GateResult(
            "RECONCILER_ALLOWED_ACCOUNTS", False, f"not on the allowlist: {','.join(outside)}"
        )
    return GateResult("RECONCILER_ALLOWED_ACCOUNTS", True, f"allowed: {','.join(i.accounts)}")


def gate_mode_matches_account_kind(i: GateInputs) -> GateResult:
    if i.settings.is_live:
        paper = [a for a in i.accounts if is_paper_account(a)]
        if paper:
            return GateResult(
                "ACCOUNT_KIND", False, f"live mode but paper account(s): {','.join(paper)}"
            )
        return GateResult("ACCOUNT_KIND", True, "live accounts in live mode")
    live = [a for a in i.accounts if not is_paper_account(a)]
    if live:
        return GateResult(
            "ACCOUNT_KIND", False, f"paper mode but live account(s): {','.join(live)}"
        )
    return GateResult("ACCOUNT_KIND", True, "paper accounts in paper mode")


def gate_accounts_managed(i: GateInputs) -> GateResult:
    if i.managed_accounts is None:
        return GateResult("ACCOUNT_MANAGED", False, "gateway's managed accounts unknown")
    missing = [a for a in i.accounts if a not in i.managed_accounts]
    if missing:
        return GateResult(
            "ACCOUNT_MANAGED",
            False,
            f"not managed by this gateway: {','.join(missing)} "
            f"(gateway manages {','.join(i.managed_accounts) or 'none'})",
        )
    return GateResult("ACCOUNT_MANAGED", True, f"gateway manages {','.join(i.accounts)}")


def gate_not_halted(i: GateInputs) -> GateResult:
    if i.halt_reason is not None:
        return GateResult("TRADING_STATE", False, f"halted out of band: {i.halt_reason}")
    halted = [a for a, s in i.trading_states.items() if s == "HALTED"]
    if halted:
        return GateResult(
            "TRADING_STATE", False, f"RiskPolicy tradingState HALTED for {','.join(halted)}"
        )
    return GateResult("TRADING_STATE", True, "not halted")


def gate_git_clean(i: GateInputs) -> GateResult:
    required = i.settings.is_live or i.settings.require_clean_git
    if not required:
        detail = "not required in paper mode"
        if i.git_commit is None:
            detail += f" ({i.git_problem or 'desired state not in git'})"
        elif i.git_dirty:
            detail += " (desired state has uncommitted changes)"
        return GateResult("DESIRED_STATE_COMMITTED", True, detail)
    if i.git_commit is None:
        # git refusing to read the checkout (ownership, permissions) is not "not in git":
        # say what git said, or the operator looks for a missing repository.
        return GateResult(
            "DESIRED_STATE_COMMITTED",
            False,
            i.git_problem or "desired state is not in a git repository",
        )
    if i.git_dirty:
        return GateResult("DESIRED_STATE_COMMITTED", False, "desired state has uncommitted changes")
    return GateResult("DESIRED_STATE_COMMITTED", True, f"clean at {i.git_commit[:10]}")


GATES: tuple[Callable[[GateInputs], GateResult], ...] = (
    gate_trading_mode,
    gate_orders_enabled,
    gate_live_override_file,
    gate_allowed_accounts,
    gate_mode_matches_account_kind,
    gate_accounts_managed,
    gate_not_halted,
    gate_git_clean,
)


def evaluate_gates(inputs: GateInputs) -> list[GateResult]:
    return [gate(inputs) for gate in GATES]


def refused(results: Sequence[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.passed]
