"""Helpers of the read-only surfaces' tests: settings for the applied store's environment and
uvicorn serving an app on an ephemeral port in a thread (started and stopped with a deadline,
never a sleep)."""

from __future__ import annotations

import threading

from waiting import wait_until


def settings_for(applied):
    from reconciler.model.settings import load_settings

    return load_settings(applied.env, dotenv_path=None)


class ServedApp:
    """uvicorn serving `app` in a thread on an ephemeral port of 127.0.0.1."""

    def __init__(self, app) -> None:
        import uvicorn

        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        )
        self.thread = threading.Thread(target=self.server.run, name="serve-test", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        wait_until(lambda: self.server.started, timeout=20, what="uvicorn to start")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
