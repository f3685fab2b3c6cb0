"""Run the app under a real uvicorn server in a background thread (tests, benchmarks, notebooks).

Why a thread and not TestClient: hot swap, micro-batching and the web page must be proven against
the real HTTP stack with real concurrent connections; ``ServerThread`` gives a loopback server on a
free port that stops cleanly.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class ServerThread:
    """``with ServerThread(app) as srv: httpx.get(srv.url + "/healthz")``."""

    def __init__(self, app, host: str = "127.0.0.1", port: int | None = None, log_level: str = "warning"):
        self.host = host
        self.port = port or free_port(host)
        self.config = uvicorn.Config(app, host=host, port=self.port, log_level=log_level,
                                     lifespan="on", timeout_keep_alive=30, access_log=False)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, name="kira-uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerThread:
        self.thread.start()
        deadline = time.time() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn exited during startup")
            if time.time() > deadline:
                raise TimeoutError(f"server on {self.url} did not start within {timeout}s")
            time.sleep(0.02)
        return self

    def wait_ready(self, timeout: float = 120.0) -> dict:
        """Block until /readyz says an index version is loaded."""
        import httpx

        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            r = httpx.get(self.url + "/readyz", timeout=5)
            if r.status_code == 200:
                return r.json()
            last = r.text
            time.sleep(0.1)
        raise TimeoutError(f"{self.url} not ready after {timeout}s: {last}")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
