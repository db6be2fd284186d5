"""Prometheus metrics of the reconciler: what each finished cycle adds to them, and the
metrics as a registry, a textfile and back.

Responsible for the one list of metrics (`METRICS`: name, type, help, labels), for turning a
cycle's facts into gauge values, counter increments and a duration observation
(`cycle_update`, pure), for keeping them in a `MetricsState` across cycles, for rendering that
state as a `prometheus_client` registry, and for the textfile: read back (`state_from_text`)
so that counters stay monotonic across `run --once` processes, and written atomically
(`write_textfile`). Must not read a clock, talk to the gateway or the store, or fail a cycle:
the app logs what this raises.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.observe.facts import CycleFacts, GatewayFacts

Labels = tuple[tuple[str, str], ...]

GAUGE, COUNTER, HISTOGRAM = "gauge", "counter", "histogram"
DURATION_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, math.inf)


@dataclass(frozen=True)
class MetricSpec:
    name: str  # counters with their `_total`
    kind: str
    help: str
    labels: tuple[str, ...] = ()


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        "reconciler_last_cycle_start_timestamp_seconds",
        GAUGE,
        "When the last cycle of the account started (Unix time).",
        ("account",),
    ),
    MetricSpec(
        "reconciler_last_cycle_end_timestamp_seconds",
        GAUGE,
        "When the last cycle of the account ended (Unix time).",
        ("account",),
    ),
    MetricSpec(
        "reconciler_last_cycle_success_timestamp_seconds",
        GAUGE,
        "When the last cycle of the account that ran to its end (not refused, not failed) "
        "ended (Unix time).",
        ("account",),
    ),
    MetricSpec(
        "reconciler_cycle_duration_seconds",
        HISTOGRAM,
        "Duration of cycles, by kind (apply, or plan: the drift report of selfHeal false).",
        ("kind",),
    ),
    MetricSpec(
        "reconciler_cycles_total",
        COUNTER,
        "Cycles by account and outcome (applied, nothing-to-do, dry-run, report-only, "
        "outside-window, blocked, not-filled, refused, error).",
        ("account", "outcome"),
    ),
    MetricSpec(
        "reconciler_gateway_up",
        GAUGE,
        "1 when the last connection to the gateway's API port succeeded, 0 when it failed.",
    ),
    MetricSpec(
        "reconciler_gateway_connected",
        GAUGE,
        "1 when the gateway's link to IBKR was up when the last session ended, 0 after an "
        "unrestored 1100.",
    ),
    MetricSpec(
        "reconciler_drift_max_abs_ratio",
        GAUGE,
        "Largest |current weight - target weight| of a managed instrument after the last "
        "cycle, as a fraction of capital (0.01 = 1 weight point).",
        ("account",),
    ),
    MetricSpec(
        "reconciler_instruments_out_of_band",
        GAUGE,
        "Managed instruments outside their band after the last cycle.",
        ("account",),
    ),
    MetricSpec(
        "reconciler_nav",
        GAUGE,
        "Net liquidation value at the last cycle's snapshot, in the account's base currency.",
        ("account", "currency"),
    ),
    MetricSpec(
        "reconciler_orders_total",
        COUNTER,
        "Planned orders by how they ended (filled, partial, cancelled, rejected, unknown, "
        "not-sent).",
        ("account", "outcome"),
    ),
    MetricSpec(
        "reconciler_risk_decisions_total",
        COUNTER,
        "Risk decisions of the cycles' plans by code and kind (denial, clip).",
        ("account", "code", "kind"),
    ),
    MetricSpec(
        "reconciler_gateway_messages_sent_total",
        COUNTER,
        "Messages sent to the gateway (API requests, orders, cancels).",
    ),
    MetricSpec(
        "reconciler_pacing_waits_total",
        COUNTER,
        "Times a request had to wait for the pacer (the gateway allows 50 messages a second).",
    ),
    MetricSpec(
        "reconciler_ledger_verified",
        GAUGE,
        "1 when the ledger's SHA-256 hash chain verified after the last cycle, 0 when not.",
    ),
    MetricSpec(
        "reconciler_ledger_breaks",
        GAUGE,
        "Ledger breaks (ledger and broker disagree) the last cycle found, per account.",
        ("account",),
    ),
    MetricSpec(
        "reconciler_notifications_sent_total",
        COUNTER,
        "Notifications delivered, by event.",
        ("event",),
    ),
    MetricSpec(
        "reconciler_notifications_failed_total",
        COUNTER,
        "Notifications that could not be delivered, by event.",
        ("event",),
    ),
)
SPECS: dict[str, MetricSpec] = {m.name: m for m in METRICS}

ORDER_OUTCOMES = {
    "FILLED": "filled",
    "PARTIAL_CANCELLED": "partial",
    "CANCELLED": "cancelled",
    "REJECTED": "rejected",
    "UNKNOWN": "unknown",
    "NOT_SENT": "not-sent",
}
DECISION_KINDS = {"deny": "denial", "clip": "clip"}


def labels(**values: str) -> Labels:
    return tuple(sorted(values.items()))


@dataclass(frozen=True)
class Update:
    """What one cycle changes: gauges set, counters incremented, durations observed."""

    gauges: tuple[tuple[str, Labels, float], ...] = ()
    increments: tuple[tuple[str, Labels, float], ...] = ()
    observations: tuple[tuple[str, Labels, float], ...] = ()


def cycle_update(facts: CycleFacts, gateway: GatewayFacts | None = None) -> Update:
    """The metrics one finished cycle sets and adds (pure). `gateway` carries the counters
    the sessions added since the last update (not their running totals)."""
    gauges: list[tuple[str, Labels, float]] = []
    adds: list[tuple[str, Labels, float]] = []
    accounts = facts.accounts or ("",)  # a cycle that failed before it knew its accounts
    started = facts.started_at.timestamp()
    ended = facts.finished_at.timestamp()
    for account in accounts:
        who = labels(account=account)
        gauges.append(("reconciler_last_cycle_start_timestamp_seconds", who, started))
        gauges.append(("reconciler_last_cycle_end_timestamp_seconds", who, ended))
        if facts.succeeded:
            gauges.append(("reconciler_last_cycle_success_timestamp_seconds", who, ended))
        adds.append(
            ("reconciler_cycles_total", labels(account=account, outcome=facts.outcome), 1.0)
        )
    if facts.knows_drift():
        widest = facts.max_abs_drift()
        for account, lines in facts.out_of_band().items():
            who = labels(account=account)
            gauges.append(("reconciler_instruments_out_of_band", who, float(len(lines))))
            gauges.append(("reconciler_drift_max_abs_ratio", who, widest.get(account, 0.0)))
    for (account, currency), value in facts.nav().items():
        gauges.append(("reconciler_nav", labels(account=account, currency=currency), value))
    report = facts.report
    if report is not None:
        for order in report.orders:
            status = order.status if order.status in ORDER_OUTCOMES else "UNKNOWN"
            if status not in ("FILLED", "PARTIAL_CANCELLED") and order.filled > 0:
                status = "PARTIAL_CANCELLED"  # as model.outcome.order_counts counts it
            outcome = labels(account=order.account, outcome=ORDER_OUTCOMES[status])
            adds.append(("reconciler_orders_total", outcome, 1.0))
        for decision in report.denials:
            kind = DECISION_KINDS.get(decision.action, decision.action)
            which = labels(account=decision.account, code=decision.code, kind=kind)
            adds.append(("reconciler_risk_decisions_total", which, 1.0))
        if report.breaks is not None:
            for account in accounts:
                found = [
                    line
                    for line in (*report.breaks, *(report.breaks_after or ()))
                    if f"account={account} " in line
                ]
                gauges.append(
                    ("reconciler_ledger_breaks", labels(account=account), float(len(found)))
                )
    if facts.ledger_verified is not None:
        gauges.append(("reconciler_ledger_verified", (), 1.0 if facts.ledger_verified else 0.0))
    if gateway is not None:
        gauges += gateway_gauges(gateway)
        adds.append(("reconciler_gateway_messages_sent_total", (), float(gateway.messages_sent)))
        adds.append(("reconciler_pacing_waits_total", (), float(gateway.pacing_waits)))
    observe = (
        ("reconciler_cycle_duration_seconds", labels(kind=facts.kind), facts.duration_seconds),
    )
    return Update(tuple(gauges), tuple(adds), observe)


def gateway_gauges(gateway: GatewayFacts) -> list[tuple[str, Labels, float]]:
    out = []
    if gateway.up is not None:
        out.append(("reconciler_gateway_up", (), 1.0 if gateway.up else 0.0))
    if gateway.link_ok is not None:
        out.append(("reconciler_gateway_connected", (), 1.0 if gateway.link_ok else 0.0))
    return out


def notification_update(event: str, delivered: bool) -> Update:
    name = "reconciler_notifications_" + ("sent_total" if delivered else "failed_total")
    return Update(increments=((name, labels(event=event), 1.0),))


@dataclass
class Histogram:
    """Cumulative bucket counts aligned with DURATION_BUCKETS, their sum and count."""

    buckets: list[float] = field(default_factory=lambda: [0.0] * len(DURATION_BUCKETS))
    sum: float = 0.0

    @property
    def count(self) -> float:
        return self.buckets[-1]

    def observe(self, value: float) -> None:
        for i, bound in enumerate(DURATION_BUCKETS):
            if value <= bound:
                self.buckets[i] += 1
        self.sum += value


@dataclass
class MetricsState:
    """Every metric's samples; the daemon keeps one in memory, timer mode in the textfile."""

    values: dict[str, dict[Labels, float]] = field(default_factory=dict)
    histograms: dict[str, dict[Labels, Histogram]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def apply(self, update: Update) -> None:
        with self.lock:
            for name, key, value in update.gauges:
                self.values.setdefault(name, {})[key] = float(value)
            for name, key, amount in update.increments:
                samples = self.values.setdefault(name, {})
                # Present at 0 too: rate() and increase() need the series to exist before it grows.
                samples[key] = samples.get(key, 0.0) + max(0.0, float(amount))
            for name, key, value in update.observations:
                self.histograms.setdefault(name, {}).setdefault(key, Histogram()).observe(value)

    def value(self, name: str, **label_values: str) -> float | None:
        return self.values.get(name, {}).get(labels(**label_values))

    def families(self) -> Iterator[Any]:
        """The metric families, in METRICS order, for a registry's collector."""
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        with self.lock:
            for spec in METRICS:
                names = list(spec.labels)
                if spec.kind == HISTOGRAM:
                    family = HistogramMetricFamily(spec.name, spec.help, labels=names)
                    for key, hist in sorted(self.histograms.get(spec.name, {}).items()):
                        family.add_metric(
                            [dict(key).get(n, "") for n in names],
                            [
                                (_le(b), c)
                                for b, c in zip(DURATION_BUCKETS, hist.buckets, strict=True)
                            ],
                            hist.sum,
                        )
                    yield family
                    continue
                maker = CounterMetricFamily if spec.kind == COUNTER else GaugeMetricFamily
                family = maker(spec.name, spec.help, labels=names)
                for key, value in sorted(self.values.get(spec.name, {}).items()):
                    family.add_metric([dict(key).get(n, "") for n in names], value)
                yield family


def _le(bound: float) -> str:
    return "+Inf" if math.isinf(bound) else repr(float(bound))


class StateCollector:
    """A `prometheus_client` collector that reads a `MetricsState` at each scrape."""

    def __init__(self, state: MetricsState) -> None:
        self.state = state

    def collect(self) -> Iterable[Any]:
        return list(self.state.families())


def registry(state: MetricsState):
    from prometheus_client import CollectorRegistry

    made = CollectorRegistry(auto_describe=False)
    made.register(StateCollector(state))
    return made


def render_text(state: MetricsState) -> str:
    """The Prometheus text exposition of `state`."""
    from prometheus_client import generate_latest

    return generate_latest(registry(state)).decode("utf-8")


def state_from_text(text: str) -> MetricsState:
    """The state a textfile holds (ours only; unknown metrics and malformed text are
    dropped rather than failing the cycle that would add to them)."""
    from prometheus_client.parser import text_string_to_metric_families

    state = MetricsState()
    try:
        families = list(text_string_to_metric_families(text))
    except Exception:  # a torn or foreign file: start again, counters reset (Prometheus copes)
        return state
    for family in families:
        total = family.name + "_total"
        spec = SPECS.get(family.name) or SPECS.get(total)
        if spec is None:
            continue
        if spec.kind == HISTOGRAM:
            _read_histogram(state, spec, family.samples)
            continue
        for sample in family.samples:
            if sample.name not in (spec.name,):
                continue
            key = labels(**{k: v for k, v in sample.labels.items() if k in spec.labels})
            state.values.setdefault(spec.name, {})[key] = float(sample.value)
    return state


def _read_histogram(state: MetricsState, spec: MetricSpec, samples: Iterable[Any]) -> None:
    bounds = {_le(b): i for i, b in enumerate(DURATION_BUCKETS)}
    for sample in samples:
        plain = {k: v for k, v in sample.labels.items() if k in spec.labels}
        hist = state.histograms.setdefault(spec.name, {}).setdefault(labels(**plain), Histogram())
        if sample.name == spec.name + "_bucket":
            le = sample.labels.get("le", "")
            index = bounds.get("+Inf" if le == "+Inf" else _le(float(le)))
            if index is not None:
                hist.buckets[index] = float(sample.value)
        elif sample.name == spec.name + "_sum":
            hist.sum = float(sample.value)


def read_textfile(path: str | Path) -> MetricsState:
    try:
        return state_from_text(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return MetricsState()


def write_textfile(path: str | Path, state: MetricsState) -> None:
    """Write the state for node_exporter's textfile collector, atomically (a temporary file
    renamed over the old one: a scrape never reads a torn file)."""
    from prometheus_client import write_to_textfile

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_to_textfile(str(target), registry(state))
    # node_exporter reads it as another user, whatever the service's umask (0077 under the
    # shipped units): it holds no secret, and the directory decides who may reach it.
    target.chmod(0o644)


def update_textfile(path: str | Path, *updates: Update) -> MetricsState:
    """Read the textfile, add `updates`, write it back, under a lock file next to it so that
    two processes (a timer cycle and a manual apply) never lose each other's increments."""
    from filelock import FileLock

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock", timeout=30):
        state = read_textfile(target)
        for update in updates:
            state.apply(update)
        write_textfile(target, state)
    return state
