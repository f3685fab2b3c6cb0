"""Hot swap: the server answers from an immutable snapshot and replaces it atomically.

Why: rebuilding an index or plugging in a KB publishes a new version while questions keep
arriving. A request takes the current :class:`Snapshot` once, at its start, and uses only that
object, so a swap never mixes versions within one answer and never fails a request in flight.
Loading the next snapshot happens in a background thread (the job worker or the watcher), never
on the request path; the swap itself is a single reference assignment under a lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kira.serve.service import NotReady, current_version_name, detach_jvm

log = logging.getLogger("kira.serve")


@dataclass(frozen=True)
class Snapshot:
    """One loaded index version. Never mutated; replaced as a whole."""

    version: str
    engine: Any
    loaded_at: float = field(default_factory=time.time)


class SnapshotHolder:
    """Holds the current snapshot; ``reload()`` builds the next one and swaps it in.

    ``loader() -> engine`` loads the version current on disk (an engine with a ``version``
    attribute); ``version_probe() -> str | None`` tells cheaply which version that is.
    """

    def __init__(self, loader: Callable[[], Any], version_probe: Callable[[], str | None],
                 on_swap: Callable[[Snapshot | None, Snapshot], None] | None = None):
        self._loader = loader
        self._probe = version_probe
        self._on_swap = on_swap
        self._current: Snapshot | None = None
        self._load_lock = threading.Lock()  # one load + swap at a time (job worker vs watcher)
        self.last_error: str | None = None
        self.swaps = 0
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def current(self) -> Snapshot | None:
        return self._current  # a plain attribute read is atomic in CPython

    def get(self) -> Snapshot:
        snap = self._current
        if snap is None:
            raise NotReady(self.last_error or "no index version loaded yet")
        return snap

    def reload(self, force: bool = False) -> Snapshot | None:
        """Load the version current on disk (unless already loaded) and swap it in."""
        with self._load_lock:
            on_disk = self._probe()
            old = self._current
            if not force and old is not None and on_disk == old.version:
                return old
            if on_disk is None and old is None:
                self.last_error = "no index version published yet"
                return None
            try:
                engine = self._loader()
            except NotReady as e:
                self.last_error = str(e)
                return old
            except Exception as e:  # a broken new version must not take the server down
                self.last_error = f"loading index version {on_disk}: {type(e).__name__}: {e}"
                log.exception("snapshot load failed")
                return old
            new = Snapshot(version=str(engine.version), engine=engine)
            self._current = new  # the swap: one reference assignment, atomic for readers
            self.swaps += 1
            self.last_error = None
            if self._on_swap:
                self._on_swap(old, new)
            log.info("serving index version %s (was %s)", new.version, old.version if old else None)
            return new

    # ---- loader / watcher thread ------------------------------------------------------------
    def start_watcher(self, interval_s: float) -> None:
        """Load the first snapshot, then poll ``indexes/current`` every ``interval_s`` (0 = never).

        One long-lived thread does both, so JVM-backed searchers (pyserini) are created on a thread
        that does not exit under them; a version published by anyone gets loaded and swapped in.
        """
        if self._watcher is not None:
            return
        self._stop.clear()

        def loop() -> None:
            try:
                self.reload()
                while not self._stop.wait(interval_s if interval_s > 0 else 3600):
                    if interval_s <= 0:
                        continue
                    try:
                        cur = self._current
                        if self._probe() != (cur.version if cur else None):
                            self.reload()
                    except Exception:  # keep watching whatever happens
                        log.exception("index watcher")
            finally:
                detach_jvm()

        self._watcher = threading.Thread(target=loop, name="kira-index-watcher", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
            self._watcher = None


def probe_for(indexes_dir) -> Callable[[], str | None]:
    return lambda: current_version_name(indexes_dir)
