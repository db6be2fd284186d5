"""A second process for the store's concurrency tests, and the parent's handle on it.

`Worker(command, url, *args)` starts `run` in a separate process (multiprocessing's
forkserver: a clean server process with the store preloaded forks each worker, so workers
start in milliseconds and share no connection, file lock or thread with the test). Parent
and worker talk in messages over a pipe, so tests synchronise on messages, never on sleeps.

Commands:
  open URL                   READY, wait GO, open_store, say OPENED <revision>
  append URL N TAG           open, READY, wait GO, append N events, say DONE
  hold URL ACCOUNTS HOLDER   take the lock (comma-separated accounts), say HELD <lock_id>; then
                             on "release" release and say RELEASED, on "crash" exit at once
                             without releasing anything (what a SIGKILL leaves behind)
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.connection import Connection

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["store_worker", "reconciler.store", "alembic.command"])


def run(pipe: Connection, command: str, url: str, args: tuple[str, ...]) -> None:
    from reconciler.store import open_store
    from reconciler.store.migrate import current_revision

    def wait_for(word: str) -> str:
        line = pipe.recv()
        if word and line != word:
            raise SystemExit(f"expected {word!r}, got {line!r}")
        return line

    if command == "open":
        pipe.send("READY")
        wait_for("GO")
        store = open_store(url)
        pipe.send(f"OPENED {current_revision(store.engine)}")
    elif command == "append":
        count, tag = int(args[0]), args[1]
        store = open_store(url)
        pipe.send("READY")
        wait_for("GO")
        for i in range(count):
            store.append_event("STATUS", account="DU0000001", payload={"tag": tag, "i": i})
        pipe.send("DONE")
    elif command == "hold":
        accounts, holder = args[0].split(","), args[1]
        store = open_store(url)
        handle = store.account_lock(accounts, holder, ttl_seconds=600)
        pipe.send(f"HELD {handle.lock_id}")
        if wait_for("") == "crash":
            os._exit(0)
        handle.release()
        pipe.send("RELEASED")
    else:
        raise SystemExit(f"unknown command {command!r}")


class Worker:
    """A running worker process; `expect` waits (with a deadline) for its next message."""

    def __init__(self, command: str, url: str, *args: str) -> None:
        self._pipe, child_end = _CONTEXT.Pipe()
        self.proc = _CONTEXT.Process(target=run, args=(child_end, command, url, args))
        self.proc.start()
        child_end.close()

    @property
    def pid(self) -> int:
        assert self.proc.pid is not None
        return self.proc.pid

    def expect(self, prefix: str, timeout: float = 20.0) -> str:
        try:
            if not self._pipe.poll(timeout):
                raise AssertionError(f"worker said nothing within {timeout}s")
            message = self._pipe.recv()
        except EOFError:
            raise AssertionError(
                f"worker exited (code {self.proc.exitcode}) before saying {prefix!r}"
            ) from None
        assert message.startswith(prefix), f"expected {prefix!r}, worker said {message!r}"
        return message[len(prefix) :].strip()

    def send(self, message: str) -> None:
        self._pipe.send(message)

    def wait(self, timeout: float = 20.0) -> int | None:
        self.proc.join(timeout)
        return self.proc.exitcode

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self._pipe.close()
