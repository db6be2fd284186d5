"""After each cycle: publish its metrics and send its notifications, in one place.

Responsible for the `Observer` every command that runs cycles holds (`apply`, `run --once`,
the daemon): it turns a finished cycle into `CycleFacts` (from its report, or from the
refusal or error that ended it before the store recorded it), adds the gateway sessions'
counters since the last cycle (`reconciler.broker.stats`), checks the ledger's hash chain,
updates the metrics (the textfile of RECONCILER_METRICS_FILE, read, added to and rewritten
under a lock so `_total` counters stay monotonic across `run --once` processes; the daemon's
/metrics server on RECONCILER_METRICS_PORT) and sends the cycle's notifications
(RECONCILER_NOTIFY_URLS) through the de-duplication state in the state directory. Also the
operator's events (halt, resume, `reconcile notify`). Nothing here may fail a cycle: every
problem is logged (and a failed notification counted), never raised. Must not decide what a
cycle does.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.model.clock import Clock
from reconciler.model.settings import Settings
from reconciler.model.status import CycleStatus

if TYPE_CHECKING:
    # Imported where used: commands build their Observer before connecting, and the facts
    # (with the plan and report models they read) are needed only once a cycle ended.
    from reconciler.observe.facts import CycleFacts, GatewayFacts

log = logging.getLogger("reconciler.app.observing")


class Observer:
    """Metrics and notifications of this process's cycles. Cheap when neither is set up:
    prometheus_client and apprise are imported only when used."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        store: Any = None,
        echo: Callable[[str], None] | None = None,
        since: Any = None,
    ) -> None:
        """`since`: the gateway counters (`gateway_counts`) from which this observer's
        cycles count, when they were taken before the settings were read; else now."""
        self.settings = settings
        self.clock = clock
        self.store = store
        self.echo = echo
        self._lock = threading.Lock()
        self._seen: Any = None
        if settings.metrics_file or settings.metrics_port:
            # The baseline: sessions counted from here on are this observer's cycles'. Only
            # then: the broker package is not worth importing for a halt's notification.
            self._seen = since if since is not None else gateway_counts()
        self._state: Any = None  # the daemon's MetricsState, served over HTTP
        self._server: Any = None

    @property
    def metrics_on(self) -> bool:
        return bool(self.settings.metrics_file) or self._state is not None

    # ------------------------------------------------------------------ cycles

    def cycle(self, facts: CycleFacts) -> None:
        """Publish one finished cycle. Never raises."""
        try:
            self._cycle(facts)
        except Exception:  # observability must never take the reconciler down
            log.exception("publishing the metrics and notifications of a cycle failed")

    def _cycle(self, facts: CycleFacts) -> None:
        updates = []
        if self.metrics_on:
            from reconciler.observe.metrics import cycle_update

            if facts.ledger_verified is None and self.store is not None:
                facts = _with_ledger_check(facts, self.store)
            updates.append(cycle_update(facts, self._gateway_since_last()))
        if self.settings.notify_urls:
            updates += self._notify_cycle(facts)
        self._publish(updates)

    def gateway_unreachable(self) -> None:
        """The daemon's probe found the gateway's port closed: reconciler_gateway_up 0."""
        if not self.metrics_on:
            return
        try:
            from reconciler.observe.facts import GatewayFacts
            from reconciler.observe.metrics import Update, gateway_gauges

            self._publish([Update(gauges=tuple(gateway_gauges(GatewayFacts(up=False))))])
        except Exception:
            log.exception("publishing reconciler_gateway_up failed")

    def _gateway_since_last(self) -> GatewayFacts:
        from reconciler.broker.stats import STATS, GatewayCounts
        from reconciler.observe.facts import GatewayFacts

        with self._lock:
            now, before = STATS.snapshot(), self._seen or GatewayCounts()
            self._seen = now
        attempted = now.connects > before.connects
        return GatewayFacts(
            messages_sent=now.messages_sent - before.messages_sent,
            pacing_waits=now.pacing_waits - before.pacing_waits,
            up=now.last_connect_ok if attempted else None,
            link_ok=now.last_link_ok if attempted and now.last_connect_ok else None,
        )

    def _publish(self, updates: Sequence[Any]) -> None:
        if not updates or not self.metrics_on:
            return
        from reconciler.observe.metrics import update_textfile

        if self.settings.metrics_file:
            try:
                state = update_textfile(self.settings.metrics_file, *updates)
            except OSError as exc:
                log.error("metrics file %s not written: %s", self.settings.metrics_file, exc)
            else:
                if self._state is not None:
                    with self._state.lock:
                        self._state.values, self._state.histograms = state.values, state.histograms
                return
        if self._state is not None:
            for update in updates:
                self._state.apply(update)

    # ------------------------------------------------------------------ HTTP (daemon)

    def serve_http(self) -> str | None:
        """Serve /metrics on RECONCILER_METRICS_PORT (the daemon); the address it listens
        on, or None when no port is set."""
        port = self.settings.metrics_port
        if not port:
            return None
        from prometheus_client import start_http_server

        from reconciler.observe.metrics import MetricsState, read_textfile, registry

        self._state = (
            read_textfile(self.settings.metrics_file)
            if self.settings.metrics_file
            else MetricsState()
        )
        address = self.settings.metrics_address
        self._server, _thread = start_http_server(
            port, addr=address, registry=registry(self._state)
        )
        return f"http://{address}:{port}/metrics"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    # ------------------------------------------------------------------ notifications

    def _notify_cycle(self, facts: CycleFacts) -> list[Any]:
        from filelock import FileLock

        from reconciler.observe.notify import (
            STATE_FILE,
            cycle_events,
            due,
            dump_state,
            load_state,
            observed_scopes,
            remember,
        )
        from reconciler.util.files import atomic_write

        wanted = set(self.settings.notify_events)
        events = [e for e in cycle_events(facts) if e.kind in wanted]
        path = Path(self.settings.state_dir) / STATE_FILE
        now = self.clock.now()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(path) + ".lock", timeout=30):
                state = load_state(path)
                send, kept = due(
                    events,
                    state,
                    observed_scopes(facts),
                    now=now,
                    repeat_seconds=self.settings.notify_repeat_seconds,
                )
                delivered, updates = self._deliver(send)
                final = remember(kept, delivered, now)
                if final != state:
                    atomic_write(path, dump_state(final))
        except OSError as exc:  # better a repeated notification than a lost one
            log.error("notification state %s unusable (%s): sent without de-duplication", path, exc)
            return self._deliver(events)[1]
        return updates

    def event(self, kind: str, title: str, body: str) -> str | None:
        """An operator's event (halt, resume, `reconcile notify`): sent when its kind is
        wanted, never de-duplicated. None when delivered or not configured; else why not."""
        if not self.settings.notify_urls or kind not in self.settings.notify_events:
            return None
        from reconciler.observe.notify import Event

        try:
            delivered, updates = self._deliver([Event(kind, title, body)])
            self._publish(updates)
        except Exception as exc:
            log.exception("notification %s failed", kind)
            return str(exc)
        return None if delivered else "the notification could not be delivered"

    def _deliver(self, events: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        from reconciler.observe.metrics import notification_update
        from reconciler.observe.notify import send

        delivered, updates = [], []
        for event in events:
            problem = send(self.settings.notify_urls, event)
            if problem is None:
                delivered.append(event)
                log.info("notified %s: %s", event.kind, event.title)
            else:
                log.error("notification %s not delivered: %s", event.kind, problem)
                if self.echo is not None:
                    self.echo(f"notification {event.kind} not delivered: {problem}")
            updates.append(notification_update(event.kind, problem is None))
        return delivered, updates


def gateway_counts() -> Any:
    """The process's gateway counters now (`reconciler.broker.stats`): an `Observer`'s
    baseline, taken before a command connects."""
    from reconciler.broker.stats import STATS

    return STATS.snapshot()


def _with_ledger_check(facts: CycleFacts, store: Any) -> CycleFacts:
    from dataclasses import replace

    try:
        result = store.verify_ledger()
    except Exception as exc:  # a store that cannot answer is not a verified ledger
        log.warning("ledger not verified after the cycle: %s", exc)
        return replace(facts, ledger_verified=False)
    return replace(facts, ledger_verified=bool(result.ok))


# ------------------------------------------------------------------ facts of a cycle


def facts_of(
    kind: str,
    *,
    started: dt.datetime,
    finished: dt.datetime,
    accounts: Sequence[str] = (),
    outcome: Any = None,
    refused: Any = None,
    error: Any = None,
    status: str | None = None,
) -> CycleFacts:
    """The facts of a cycle: its outcome (ApplyOutcome, PlanOutcome), or the `Refused` or
    error that ended it (with its report when the store had recorded the cycle)."""
    from reconciler.observe.facts import CycleFacts

    ended = refused if refused is not None else error
    report = getattr(outcome, "report", None) or getattr(ended, "report", None)
    if report is not None:
        return CycleFacts.of_report(report, getattr(outcome, "plan", None))
    if refused is not None:
        reasons = tuple(getattr(refused, "reasons", None) or (str(refused),))
        return CycleFacts(
            kind, CycleStatus.REFUSED, started, finished, tuple(accounts), reasons=reasons
        )
    return CycleFacts(
        kind,
        status or CycleStatus.ERROR,
        started,
        finished,
        tuple(accounts),
        reasons=(str(error),) if error is not None else (),
    )
