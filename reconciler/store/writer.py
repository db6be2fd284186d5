"""The store's one background writer: ledger writes off the event loop, committed in groups.

Responsible for running write jobs (a function of an open write transaction) on one thread,
in the order they were submitted, several per transaction: everything queued when the thread
looks is written in one transaction (group commit; the ledger head is read once per group
and stored once at its end); when one job fails, the group is rolled back and written again
job by job, so only that job fails. A job's future is completed only after its transaction
committed, so a caller that waits on it knows the row is durable (the write-ahead INTENT).
Must not decide what is written or when a caller may proceed: the `Store` does.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from sqlalchemy import Connection, Engine

from reconciler.store.engine import write_tx
from reconciler.store.ledger import HEAD_CACHE, write_cached_head

Job = Callable[[Connection], Any]
BARRIER = None  # a flush's marker: completes once everything before it is written

# Enough to absorb a pacing window's events; bounds one transaction's size.
MAX_JOBS_PER_TRANSACTION = 500
# Events nobody waits for are held this long to share one commit (one fsync) with the events
# that follow them; a job someone waits for (an INTENT, a flush) ends the wait at once.
LINGER_SECONDS = 0.05


class LedgerWriter:
    """One thread writing queued jobs in order, a group per transaction."""

    def __init__(self, engine: Engine, *, name: str = "ledger-writer") -> None:
        self._engine = engine
        self._jobs: deque[tuple[Job | None, Future[Any], bool]] = deque()
        self._ready = threading.Condition()
        self._closing = False
        self._urgent = 0  # queued jobs someone waits for
        self.busy_seconds = 0.0  # time spent writing, fsync included
        self.cpu_seconds = 0.0  # of it, CPU time of this thread
        self.transactions = 0
        self.jobs_written = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job | None, *, urgent: bool = False) -> Future[Any]:
        """Queue `job`; `urgent` when the caller is about to wait for it."""
        future: Future[Any] = Future()
        with self._ready:
            if self._closing:
                raise RuntimeError("the ledger writer is closed")
            self._jobs.append((job, future, urgent))
            if urgent:
                self._urgent += 1
            # Woken only when it must act: a job after an empty queue (it may be idle), an
            # urgent one, or a full group. While it lingers the others just join the group;
            # waking it for each would cost a thread switch per event.
            if urgent or len(self._jobs) in (1, MAX_JOBS_PER_TRANSACTION):
                self._ready.notify()
        return future

    def run(self, job: Job) -> Any:
        """Submit `job` and wait until it is committed; its result, or its exception."""
        return self.submit(job, urgent=True).result()

    def flush(self) -> None:
        """Wait until everything submitted so far is committed (or has failed)."""
        self.submit(BARRIER, urgent=True).result()

    def close(self) -> None:
        with self._ready:
            if self._closing:
                return
            self._closing = True
            self._ready.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._jobs and not self._closing:
                    self._ready.wait()
                if not self._jobs:
                    return
                lingered = time.monotonic() + LINGER_SECONDS
                while (
                    not self._urgent
                    and not self._closing
                    and len(self._jobs) < MAX_JOBS_PER_TRANSACTION
                    and (left := lingered - time.monotonic()) > 0
                ):
                    self._ready.wait(left)
                taken = [
                    self._jobs.popleft()
                    for _ in range(min(len(self._jobs), MAX_JOBS_PER_TRANSACTION))
                ]
                self._urgent -= sum(urgent for _job, _future, urgent in taken)
            batch = [(job, future) for job, future, _urgent in taken]
            started, cpu = time.perf_counter(), time.thread_time()
            self._write(batch)
            self.busy_seconds += time.perf_counter() - started
            self.cpu_seconds += time.thread_time() - cpu

    def _write(self, batch: list[tuple[Job | None, Future[Any]]]) -> None:
        jobs = [(job, future) for job, future in batch if job is not BARRIER]
        if jobs:
            try:
                results = self._transaction([job for job, _ in jobs])
            except Exception:
                # One job failed and the group was rolled back: each job again in its own
                # transaction, so only the failing one fails.
                for job, future in jobs:
                    try:
                        [result] = self._transaction([job])
                    except Exception as exc:
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
            except BaseException as exc:
                for _job, future in batch:
                    future.set_exception(RuntimeError(f"the ledger writer stopped: {exc!r}"))
                raise
            else:
                for (_job, future), result in zip(jobs, results, strict=True):
                    future.set_result(result)
        for job, future in batch:
            if job is BARRIER:
                future.set_result(None)

    def _transaction(self, jobs: list[Job]) -> list[Any]:
        """Run `jobs` in one write transaction; their results once it committed."""
        with write_tx(self._engine) as conn:
            conn.info[HEAD_CACHE] = {}
            try:
                results = [job(conn) for job in jobs]
                write_cached_head(conn)
            finally:
                conn.info.pop(HEAD_CACHE, None)
        self.transactions += 1
        self.jobs_written += len(jobs)
        return results
