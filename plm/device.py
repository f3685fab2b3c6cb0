"""Device and precision choices, in one place, so every hot path uses a GPU when present."""

from __future__ import annotations

import contextlib
import os
import time

import torch


def pick_device(preference: str = "auto") -> torch.device:
    """``auto`` → CUDA when available, else CPU. ``KIRA_DEVICE`` overrides."""
    preference = os.environ.get("KIRA_DEVICE", preference)
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def autocast(device: torch.device, bf16: bool = True):
    """bf16 autocast on CPU and GPU (roughly 2x MiniLM encoding on these CPUs at cosine 1.000)."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def _cpu_ticks() -> tuple[float, float] | None:
    """(seconds of CPU all processes at normal or higher priority used, this process's CPU seconds).

    From ``/proc/stat``'s first line: user + system + irq + softirq + steal. The ``nice`` column is
    left out on purpose: a niced job yields its core to us, so it should not cost us a thread."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu" or len(fields) < 9:
        return None
    user, _nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[1:9])
    hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    t = os.times()
    return (user + system + irq + softirq + steal) / hz, t.user + t.system


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class ThreadGovernor:
    """Intra-op threads = the cores other processes leave free, re-measured every ``every`` seconds.

    Why: torch's threads meet at a barrier after every parallel op, so one thread sharing its core
    with another job makes all of them wait. On this 2-core box MiniLM encoding drops from ~290
    passages/s to ~55 with 2 threads when ``stress-ng --cpu 1`` holds a core, while 1 thread keeps
    ~130. The measure is cheap (one read of ``/proc/stat``): CPU the whole machine used in the last
    window minus what this process used, so our own work never looks like contention."""

    def __init__(self, every: float = 3.0, first: float = 0.5, cores: int | None = None):
        self.every, self.first = every, first
        self.cores = cores or _cores()
        self._last: tuple[float, float, float] | None = None
        self._measured = False
        self.threads = self.cores

    def observe(self, now: float, machine_busy: float, self_busy: float) -> int:
        """Update from one reading (monotonic seconds, cumulative busy CPU seconds); returns threads."""
        if self._last is None:
            self._last = (now, machine_busy, self_busy)
            return self.threads
        t0, m0, s0 = self._last
        if not self._due(now):
            return self.threads
        others = max(0.0, (machine_busy - m0) - (self_busy - s0)) / max(now - t0, 1e-6)
        self.threads = max(1, min(self.cores, int(self.cores - others + 0.5)))
        self._last = (now, machine_busy, self_busy)
        self._measured = True
        return self.threads

    def _due(self, now: float) -> bool:
        # the first window is short, so a job started under load drops its extra threads quickly
        return self._last is None or now - self._last[0] >= (self.every if self._measured else self.first)

    def poll(self) -> int:
        if not self._due(time.monotonic()):
            return self.threads
        ticks = _cpu_ticks()
        return self.threads if ticks is None else self.observe(time.monotonic(), *ticks)


_GOVERNOR = ThreadGovernor()


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads: ``n``, else ``KIRA_THREADS``, else the cores other processes
    leave free (``ThreadGovernor``; all cores on an idle machine). Cheap enough to call per batch."""
    n = n or int(os.environ.get("KIRA_THREADS", "0")) or _GOVERNOR.poll()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
