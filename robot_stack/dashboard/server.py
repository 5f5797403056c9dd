"""Run the dashboard app with uvicorn in a background thread (CLI, session launcher, tests, bench)."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI


class DashboardServer:
    """A uvicorn server on its own thread; ``port`` is the bound port (useful with port 0).

    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.app = app
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level,
                                                     access_log=False, ws_max_size=1 << 16, lifespan="on"))
        self._server.install_signal_handlers = lambda: None  # not the main thread
        self._thread = threading.Thread(target=self._server.run, name="dashboard-uvicorn", daemon=True)
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 15.0) -> "DashboardServer":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the dashboard server failed to start on {self.host}:{self.port} (port in use?)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard server did not start within {timeout} s")
            time.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def wait(self) -> None:
        """Block until the server stops (Ctrl-C in the CLI)."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> "DashboardServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
