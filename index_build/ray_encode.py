"""Scale-out encoding with Ray Data (optional extra ``kira[ray]``).

The encode stage of a build, run as ``map_batches`` over an actor pool: one actor per GPU when the
cluster has GPUs, else one per ``cpus_per_actor`` CPUs; each actor loads the encoder once. The driver
streams passages from the store a few shards at a time, collects the vectors and writes the SAME
shard files and ``progress.json`` as the local path (:func:`kira.index_build.shards.encode_shards`),
so a Ray build resumes a local one and vice versa, and the rest of the build is unchanged.

On a cluster (``address="ray://head:10001"`` or ``"auto"``) only the model must be resolvable on
every worker node (the packaged MiniLM is installed with kira; a trained encoder directory must be
on a shared filesystem or copied to each node). Passage texts travel through Ray's object store and
the shard files are written by the driver, so the workspace need not be shared with the workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kira.index_build.shards import (
    ShardProgress,
    iter_shard_batches,
    passage_contents,
    shard_checksum,
    write_shard,
)


class EncodeActor:
    """A Ray Data callable class: loads the encoder once, encodes batches of ``text``."""

    def __init__(self, identity: dict[str, Any], device: str = "auto", bf16: bool = True, threads: int = 1,
                 batch_size: int = 64):
        os.environ["KIRA_THREADS"] = str(threads)  # TextEncoder.encode sizes torch threads from this
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from kira.plm.encoder import TextEncoder

        self.encoder = TextEncoder(identity["spec"], pooling=identity["pooling"], normalize=identity["normalize"],
                                   max_length=identity["max_length"], device=device, bf16=bf16)
        self.batch_size = batch_size

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vecs = self.encoder.encode([str(t) for t in batch["text"]], batch_size=self.batch_size)
        return {"shard": batch["shard"], "pos": batch["pos"], "vec": vecs}


def _pool(cpus_per_actor: int, num_actors: int | None) -> tuple[int, dict[str, Any]]:
    """Actor count and per-actor resources from the cluster: one per GPU, else per CPU share."""
    import ray

    res = ray.cluster_resources()
    gpus = int(res.get("GPU", 0))
    if gpus:
        return num_actors or gpus, {"num_gpus": 1}
    cpus = int(res.get("CPU", 1))
    return num_actors or max(1, cpus // cpus_per_actor), {"num_cpus": cpus_per_actor}


def encode_shards_ray(store, shards_dir: Path, identity: dict[str, Any], shard_size: int, batch_size: int = 64, *,
                      address: str | None = None, num_actors: int | None = None, cpus_per_actor: int = 1,
                      shards_per_round: int = 4, progress: bool = True,
                      on_shard: Callable[[int, bool], None] | None = None, device: str = "auto",
                      bf16: bool = True, init_kwargs: dict[str, Any] | None = None) -> int:
    """Encode all store passages into shards with Ray Data; returns the shard count.

    ``identity`` is :func:`kira.index_build.shards.encoder_identity` of the encoder to use.
    Finished shards (same checksum) are skipped exactly as in the local path.
    """
    import ray

    started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False,
                 **(init_kwargs or {}))
        started = True
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = progress
        n_actors, resources = _pool(cpus_per_actor, num_actors)
        prog = ShardProgress.open(Path(shards_dir), identity, shard_size)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=store.count_passages(), unit="psg", desc="encode[ray]", unit_scale=True)
        pending: list[tuple[int, str, list[str]]] = []

        def run_round() -> None:
            if not pending:
                return
            rows = [{"shard": i, "pos": j, "text": t} for i, _, texts in pending for j, t in enumerate(texts)]
            ds = ray.data.from_items(rows).map_batches(
                EncodeActor, batch_size=batch_size * 4, batch_format="numpy",
                fn_constructor_kwargs={"identity": identity, "device": device, "bf16": bf16,
                                       "threads": resources.get("num_cpus", 1), "batch_size": batch_size},
                compute=ray.data.ActorPoolStrategy(size=n_actors), **resources)
            out = {i: np.zeros((len(texts), identity["dim"]), np.float32) for i, _, texts in pending}
            for b in ds.iter_batches(batch_size=None, batch_format="numpy"):
                for s, p, v in zip(b["shard"], b["pos"], b["vec"], strict=True):
                    out[int(s)][int(p)] = v
            for i, checksum, texts in pending:
                write_shard(Path(shards_dir), i, out[i])
                prog.mark_done(i, checksum, len(texts))
                if bar:
                    bar.update(len(texts))
                if on_shard:
                    on_shard(i, True)
            pending.clear()

        n_shards = 0
        for i, batch in iter_shard_batches(store, shard_size):
            n_shards = i + 1
            checksum = shard_checksum(batch)
            if prog.is_done(i, checksum, len(batch)):
                if bar:
                    bar.update(len(batch))
                if on_shard:
                    on_shard(i, False)
                continue
            pending.append((i, checksum, [passage_contents(p.title, p.text) for p in batch]))
            if len(pending) >= shards_per_round:
                run_round()
        run_round()
        if bar:
            bar.close()
        for f in Path(shards_dir).glob("shard-*.npy"):
            k = int(f.stem.split("-")[1])
            if k >= n_shards:
                f.unlink()
                prog.shards.pop(str(k), None)
        prog.save()
        return n_shards
    finally:
        if started:
            ray.shutdown()
