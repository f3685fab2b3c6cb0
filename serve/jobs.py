"""Background jobs: KB plug-in, KB removal and reindex run one at a time off the request path.

Why one worker thread: every job ends in writing a new index version and publishing it; two at
once would race for the store and for ``indexes/current``. Clients get a job id at once (202) and
poll ``GET /v1/admin/jobs/{id}`` for state, progress and the error if it failed.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from kira.errors import KiraError
from kira.serve.service import detach_jvm

log = logging.getLogger("kira.serve.jobs")

JobFn = Callable[["Job"], dict[str, Any] | None]


@dataclass
class Job:
    id: str
    kind: str
    params: dict[str, Any]
    state: str = "queued"  # queued | running | succeeded | failed
    progress: float = 0.0
    stage: str = "queued"
    error: str | None = None
    result: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    def report(self, progress: float, stage: str) -> None:
        """Called by the job body as it advances."""
        self.progress = max(0.0, min(1.0, float(progress)))
        self.stage = stage

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class JobManager:
    """A FIFO of jobs and the single thread that runs them."""

    def __init__(self, keep: int = 200):
        self._jobs: dict[str, Job] = {}
        self._fns: dict[str, JobFn] = {}
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._keep = keep
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kira-jobs", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def submit(self, kind: str, params: dict[str, Any], fn: JobFn) -> Job:
        with self._lock:
            job = Job(id=f"job-{next(self._ids):05d}-{int(time.time())}", kind=kind, params=params)
            self._jobs[job.id] = job
            self._fns[job.id] = fn
            self._prune()
        self._queue.put(job.id)
        self.start()
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def list(self) -> list[Job]:
        return sorted(self._jobs.values(), key=lambda j: j.created_at)

    def wait(self, job_id: str, timeout: float = 60.0) -> Job:
        """Block until a job finishes (for tests and the CLI)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self._jobs[job_id]
            if job.state in ("succeeded", "failed"):
                return job
            time.sleep(0.05)
        raise TimeoutError(f"job {job_id} still {self._jobs[job_id].state} after {timeout}s")

    def _prune(self) -> None:
        done = [j for j in self.list() if j.state in ("succeeded", "failed")]
        for j in done[: max(0, len(self._jobs) - self._keep)]:
            self._jobs.pop(j.id, None)

    def _run(self) -> None:
        while True:
            job_id = self._queue.get()
            if job_id is None:
                detach_jvm()  # index builds ran Lucene on this thread
                return
            job = self._jobs.get(job_id)
            fn = self._fns.pop(job_id, None)
            if job is None or fn is None:
                continue
            job.state, job.started_at = "running", time.time()
            job.report(0.01, "started")
            try:
                job.result = fn(job) or {}
                job.state = "succeeded"
                job.report(1.0, "done")
            except Exception as e:  # the job failed; the server keeps serving the old snapshot
                job.error = f"{type(e).__name__}: {e}"
                job.state = "failed"
                if isinstance(e, KiraError):  # bad input named by file/line: the message is the story
                    log.warning("job %s failed: %s", job.id, job.error)
                else:
                    log.warning("job %s failed: %s\n%s", job.id, job.error, traceback.format_exc())
            finally:
                job.finished_at = time.time()
