"""Micro-batching: concurrent questions share one encoder/reader forward pass.

Why: a transformer forward over 16 questions costs far less than 16 forwards of one, so under
concurrent load the server keeps collecting questions while they keep arriving -- until none has
come for ``max_wait_ms``, for at most ``GAP_CAP`` × ``max_wait_ms`` in all, never more than
``max_batch`` -- and hands them to ``ask_batch`` together. Waiting for a quiet gap rather than a
fixed time after the first question matters: when a batch's answers go out, the clients' next
questions come back spread over tens of milliseconds (one response is serialised at a time), and a
fixed 5 ms window split them into batches of ~8 of 16 (measured: 1.63x instead of 2x+). Requests are grouped by
everything that must be identical within a batch (snapshot, k, sources, reader, method).
The model work runs on one worker thread so the event loop stays free for I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from kira.serve.service import detach_jvm

BatchFn = Callable[[Hashable, list[Any]], list[Any]]
GAP_CAP = 10  # a batch waits at most this many quiet gaps (max_wait_ms) in all


@dataclass
class _Item:
    key: Hashable
    payload: Any
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


class MicroBatcher:
    """``await submit(key, payload)`` → ``(result, seconds queued, batch size)``.

    ``result`` is what ``fn(key, [payloads…])`` produced for this payload.
    """

    def __init__(self, fn: BatchFn, max_batch: int = 16, max_wait_ms: float = 5.0,
                 on_batch: Callable[[int, float], None] | None = None):
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait = max(0.0, max_wait_ms) / 1000.0
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kira-batch")
        self.batches = 0
        self.items = 0

    async def start(self) -> None:
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = asyncio.create_task(self._run(), name="kira-microbatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._executor.submit(detach_jvm)  # the worker thread may have searched Lucene
        # wait for the batch in progress: exiting while torch runs on that thread can crash the process
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run other model work (search) on the same worker thread, so it never competes for cores."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def submit(self, key: Hashable, payload: Any) -> Any:
        if self._queue is None:
            await self.start()
        fut = asyncio.get_running_loop().create_future()
        await self._queue.put(_Item(key, payload, fut))
        return await fut

    async def _collect(self) -> list[_Item]:
        first = await self._queue.get()
        batch = [first]
        deadline = time.perf_counter() + GAP_CAP * self.max_wait
        while len(batch) < self.max_batch:
            remaining = min(self.max_wait, deadline - time.perf_counter())
            if remaining <= 0:
                # take whatever is already queued without waiting
                while len(batch) < self.max_batch and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._collect()
            groups: dict[Hashable, list[_Item]] = {}
            for it in batch:
                if not it.future.done():  # skip requests that already timed out / disconnected
                    groups.setdefault(it.key, []).append(it)
            for key, items in groups.items():
                t0 = time.perf_counter()
                try:
                    results = await loop.run_in_executor(self._executor, self.fn, key,
                                                         [it.payload for it in items])
                    if len(results) != len(items):
                        raise RuntimeError(f"batch function returned {len(results)} results for "
                                           f"{len(items)} inputs")
                except Exception as e:
                    for it in items:
                        if not it.future.done():
                            it.future.set_exception(e)
                    continue
                self.batches += 1
                self.items += len(items)
                if self.on_batch:
                    self.on_batch(len(items), time.perf_counter() - t0)
                for it, res in zip(items, results, strict=True):
                    if not it.future.done():
                        it.future.set_result((res, t0 - it.enqueued, len(items)))
