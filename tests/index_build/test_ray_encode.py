"""The Ray Data encode path (local Ray runtime) writes the same shards as the local encoder, and a
build with ``encode_backend="ray"`` resumes from shards the local path left behind.

The check runs in a fresh interpreter: a Ray runtime started inside the pytest process (which
already hosts pyserini's JVM from other tests) leaves the process liable to crash in later tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("ray")

SCRIPT = """
import numpy as np
import pytest
import ray

from kira.config import load_config
from kira.index_build import shards
from kira.index_build.build import build_index, load_encoder
from kira.index_build.ray_encode import encode_shards_ray
from kira.kb.store import DuckDBStore
from kira.schema import Passage

tmp_path = __import__("pathlib").Path(__import__("sys").argv[1])
config = load_config(tmp_path / "ws")
store = DuckDBStore(tmp_path / "store.duckdb")
"""


@pytest.mark.slow  # starting a Ray runtime and its actor processes costs ~25 s of CPU
def test_ray_shards_match_local(tmp_path):
    script = SCRIPT + textwrap.dedent(BODY)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                         env=env, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "RAY-OK" in out.stdout


BODY = r"""
config.device = "cpu"
config.index.shard_size = 4
store.add_passages(Passage(id=f"p{i:02d}", title=f"T{i}", text=f"passage number {i} about topic {i % 3}",
                           source="s") for i in range(10))
enc = load_encoder("tiny-bert", config)
ident = shards.encoder_identity(enc)
local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
n_local = shards.encode_shards(store, local_dir, enc, 4, progress=False)
seen: list[tuple[int, bool]] = []
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
try:
    n_ray = encode_shards_ray(store, ray_dir, ident, 4, batch_size=4, progress=False, num_actors=1,
                              shards_per_round=2, on_shard=lambda i, e: seen.append((i, e)))
    assert n_ray == n_local == 3 and seen == [(0, True), (1, True), (2, True)]
    for i in range(3):  # same vectors (bf16 batches may round differently: compare loosely)
        a, b = shards.read_shard(local_dir, i), shards.read_shard(ray_dir, i)
        assert a.shape == b.shape and np.allclose(a, b, atol=2e-2)
    assert (ray_dir / "progress.json").read_text() == (local_dir / "progress.json").read_text()

    # a build on Ray reuses shards an interrupted local build finished
    def stop(i: int, encoded: bool) -> None:
        if i == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        build_index(config, store, encoder_spec="tiny-bert", progress=False, on_shard=stop)
    seen.clear()
    v = build_index(config, store, encoder_spec="tiny-bert", progress=False, encode_backend="ray",
                    on_shard=lambda i, e: seen.append((i, e)))
    assert seen == [(0, False), (1, False), (2, True)]
    assert v.manifest["passages"] == 10 and v.manifest["verify"]["dense_probes"] == 3
finally:
    ray.shutdown()
print('RAY-OK')
"""
