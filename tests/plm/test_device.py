"""ThreadGovernor: threads follow the CPU that *other* processes use, never our own."""

from __future__ import annotations

import torch

from kira.plm import device
from kira.plm.device import ThreadGovernor


def test_all_cores_until_a_window_is_measured():
    g = ThreadGovernor(every=3.0, first=0.5, cores=2)
    assert g.observe(0.0, 0.0, 0.0) == 2
    assert g.observe(0.2, 0.4, 0.0) == 2  # window shorter than `first`: no decision yet


def test_another_job_holding_a_core_leaves_one_thread():
    g = ThreadGovernor(every=3.0, first=0.5, cores=2)
    g.observe(0.0, 10.0, 5.0)
    # in 1 s the machine used 2.0 CPU-s, of which 1.0 was ours: someone else holds a core
    assert g.observe(1.0, 12.0, 6.0) == 1
    # next decision only after `every` seconds
    assert g.observe(2.0, 14.0, 6.0) == 1
    # the other job stopped: 3 s with only our own 6 CPU-s
    assert g.observe(4.0, 18.0, 12.0) == 2


def test_our_own_load_is_not_contention():
    g = ThreadGovernor(every=1.0, first=1.0, cores=4)
    g.observe(0.0, 0.0, 0.0)
    assert g.observe(1.0, 4.0, 4.0) == 4   # we used all four cores ourselves
    assert g.observe(2.0, 7.0, 4.5) == 2   # others used 2.5 of 4 cores: 1.5 left, rounded up
    assert g.observe(3.0, 10.0, 4.5) == 1  # others used 3: one core left
    assert g.observe(4.0, 14.0, 4.5) == 1  # never fewer than one thread


def test_set_threads_env_override(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("KIRA_THREADS", "1")
        assert device.set_threads() == 1 and torch.get_num_threads() == 1
        assert device.set_threads(2) == 2
    finally:
        torch.set_num_threads(before)


def test_reads_this_machine():
    ticks = device._cpu_ticks()
    if ticks is not None:  # Linux
        machine, ours = ticks
        assert machine >= 0 and ours >= 0
