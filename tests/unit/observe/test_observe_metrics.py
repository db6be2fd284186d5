"""Metrics of a finished cycle (reconciler.observe.metrics): what a cycle sets and adds, and the
textfile that keeps counters monotonic across processes (a real file in tmp_path)."""

from __future__ import annotations

import datetime as dt

import pytest
from reports import ACCOUNT, START, deny, drift, facts, order, report

from reconciler.observe.facts import CycleFacts, GatewayFacts, outcome_of
from reconciler.observe.metrics import (
    METRICS,
    MetricsState,
    cycle_update,
    labels,
    read_textfile,
    render_text,
    state_from_text,
    update_textfile,
)


def state_of(*updates) -> MetricsState:
    state = MetricsState()
    for update in updates:
        state.apply(update)
    return state


@pytest.mark.parametrize(
    ("kind", "status", "orders", "expected"),
    [
        ("apply", "ok", (order(1, "VTI", "FILLED", filled=10),), "applied"),
        ("apply", "partial", (), "applied"),
        ("apply", "ok", (), "nothing-to-do"),
        ("apply", "dry-run", (), "dry-run"),
        ("plan", "ok", (), "report-only"),
        ("apply", "outside-window", (), "outside-window"),
        ("apply", "blocked", (), "blocked"),
        ("apply", "none-filled", (), "not-filled"),
        ("apply", "unknown", (), "not-filled"),
        ("apply", "refused", (), "refused"),
        ("plan", "error", (), "error"),
        ("apply", "aborted", (), "error"),
    ],
)
def test_outcome_of_a_cycle_maps_its_status_to_the_outcome_label(kind, status, orders, expected):
    assert outcome_of(kind, status, report(kind=kind, status=status, orders=orders)) == expected


def test_cycle_update_counts_orders_by_outcome_and_denials_by_code():
    state = state_of(
        cycle_update(
            facts(
                status="partial",
                orders=(
                    order(1, "BND", "FILLED", side="SELL", filled=10),
                    order(2, "VEA", "REJECTED"),
                    order(3, "VWO", "CANCELLED", filled=4),  # filled before the cancel
                    order(4, "VTI", "UNKNOWN"),
                ),
                denials=(deny("GLD"), deny("IAU", "MAX_LEVERAGE", action="clip")),
            )
        )
    )
    orders = state.values["reconciler_orders_total"]
    assert orders == {
        labels(account=ACCOUNT, outcome="filled"): 1.0,
        labels(account=ACCOUNT, outcome="rejected"): 1.0,
        labels(account=ACCOUNT, outcome="partial"): 1.0,
        labels(account=ACCOUNT, outcome="unknown"): 1.0,
    }
    assert (
        state.value(
            "reconciler_risk_decisions_total",
            account=ACCOUNT,
            code="NOTIONAL_EXCEEDS_MAX_PER_ORDER",
            kind="denial",
        )
        == 1.0
    )
    assert (
        state.value(
            "reconciler_risk_decisions_total", account=ACCOUNT, code="MAX_LEVERAGE", kind="clip"
        )
        == 1.0
    )
    assert state.value("reconciler_cycles_total", account=ACCOUNT, outcome="applied") == 1.0


def test_cycle_update_reads_drift_after_the_orders_when_the_cycle_measured_it():
    before = (drift("VTI", 0.70, 0.60), drift("BND", 0.30, 0.40))
    after = (drift("VTI", 0.62, 0.60, in_band=True), drift("BND", 0.35, 0.40))
    state = state_of(cycle_update(facts(drift_before=before, drift_after=after)))
    assert state.value("reconciler_drift_max_abs_ratio", account=ACCOUNT) == pytest.approx(0.05)
    assert state.value("reconciler_instruments_out_of_band", account=ACCOUNT) == 1.0


def test_unmanaged_instruments_count_neither_as_drift_nor_out_of_band():
    lines = (drift("VTI", 0.5, 0.5, in_band=True), drift("GME", 0.3, 0.0, status="unmanaged"))
    state = state_of(cycle_update(facts(drift_before=lines)))
    assert state.value("reconciler_drift_max_abs_ratio", account=ACCOUNT) == 0.0
    assert state.value("reconciler_instruments_out_of_band", account=ACCOUNT) == 0.0


def test_a_refused_cycle_updates_start_and_end_but_not_the_success_timestamp():
    ok = cycle_update(facts())
    refused = cycle_update(
        facts(
            status="refused",
            started_at=START + dt.timedelta(hours=1),
            finished_at=START + dt.timedelta(hours=1, seconds=2),
        )
    )
    state = state_of(ok, refused)
    success = state.value("reconciler_last_cycle_success_timestamp_seconds", account=ACCOUNT)
    end = state.value("reconciler_last_cycle_end_timestamp_seconds", account=ACCOUNT)
    assert success == (START + dt.timedelta(seconds=12.5)).timestamp()
    assert end == (START + dt.timedelta(hours=1, seconds=2)).timestamp()
    assert state.value("reconciler_cycles_total", account=ACCOUNT, outcome="refused") == 1.0


def test_a_cycle_that_failed_before_it_knew_its_accounts_is_counted_with_an_empty_account():
    failed = CycleFacts(
        "unknown", "error", START, START + dt.timedelta(seconds=1), reasons=("gateway down",)
    )
    state = state_of(cycle_update(failed, GatewayFacts(up=False)))
    assert state.value("reconciler_cycles_total", account="", outcome="error") == 1.0
    assert state.value("reconciler_gateway_up") == 0.0
    assert state.value("reconciler_gateway_connected") is None  # not known: not set


def test_gateway_counters_add_what_the_sessions_sent_since_the_last_cycle():
    state = state_of(
        cycle_update(
            facts(), GatewayFacts(messages_sent=40, pacing_waits=3, up=True, link_ok=True)
        ),
        cycle_update(
            facts(), GatewayFacts(messages_sent=2, pacing_waits=0, up=True, link_ok=False)
        ),
    )
    assert state.value("reconciler_gateway_messages_sent_total") == 42.0
    assert state.value("reconciler_pacing_waits_total") == 3.0
    assert state.value("reconciler_gateway_connected") == 0.0


def test_the_duration_histogram_puts_a_cycle_in_every_bucket_at_or_above_its_duration():
    state = state_of(cycle_update(facts()))  # 12.5 s
    text = render_text(state)
    assert 'reconciler_cycle_duration_seconds_bucket{kind="apply",le="10.0"} 0.0' in text
    assert 'reconciler_cycle_duration_seconds_bucket{kind="apply",le="30.0"} 1.0' in text
    assert 'reconciler_cycle_duration_seconds_sum{kind="apply"} 12.5' in text


def test_the_text_exposition_reads_back_into_the_same_state():
    state = state_of(
        cycle_update(
            facts(orders=(order(1, "VTI", "FILLED", filled=10),), denials=(deny("GLD"),)),
            GatewayFacts(messages_sent=5, up=True, link_ok=True),
        )
    )
    text = render_text(state)
    assert render_text(state_from_text(text)) == text


def test_every_metric_follows_the_naming_conventions():
    for spec in METRICS:
        assert spec.name.startswith("reconciler_"), spec.name
        assert (spec.kind == "counter") == spec.name.endswith("_total"), spec.name
        assert spec.help.endswith("."), spec.name


def test_counters_in_the_textfile_keep_growing_across_processes(tmp_path):
    path = tmp_path / "textfile" / "reconciler.prom"
    update_textfile(path, cycle_update(facts(orders=(order(1, "VTI", "FILLED", filled=10),))))
    # A second process: it knows nothing but the file.
    update_textfile(path, cycle_update(facts(orders=(order(1, "VTI", "REJECTED"),))))
    state = read_textfile(path)
    assert state.value("reconciler_cycles_total", account=ACCOUNT, outcome="applied") == 2.0
    assert state.value("reconciler_orders_total", account=ACCOUNT, outcome="filled") == 1.0
    assert state.value("reconciler_orders_total", account=ACCOUNT, outcome="rejected") == 1.0
    assert 'reconciler_cycle_duration_seconds_count{kind="apply"} 2.0' in path.read_text()
    assert [p.name for p in path.parent.iterdir() if not p.name.endswith(".lock")] == [path.name]
    assert path.stat().st_mode & 0o777 == 0o644  # node_exporter reads it as another user


def test_a_torn_or_foreign_textfile_starts_the_counters_afresh_instead_of_failing(tmp_path):
    path = tmp_path / "reconciler.prom"
    path.write_text('reconciler_cycles_total{account="DU0000001" 3\n')
    state = update_textfile(path, cycle_update(facts()))
    assert state.value("reconciler_cycles_total", account=ACCOUNT, outcome="nothing-to-do") == 1.0
