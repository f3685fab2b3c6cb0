"""End-to-end index build at growing corpus sizes: time and peak RAM should grow linearly.

For each size N a synthetic corpus (Zipf-distributed pseudo-words, 100 words per document) is
written as JSONL; a CHILD process then runs ``kira index build`` (ingest + encode + Lucene + FAISS +
verify + publish) and its peak RSS comes from ``os.wait4``'s rusage, so every size is measured from
a cold process. Printed ratios compare each size with the smallest one measured in the same run:
time/passage ratio ≈ 1 means linear time; RSS figures show the per-passage growth.

    .venv/bin/python bench/index_build_scale.py                       # 10k, 100k with tiny-bert
    .venv/bin/python bench/index_build_scale.py --sizes 10000,100000,1000000   # add 1M (hours with MiniLM)
    .venv/bin/python bench/index_build_scale.py --encoder minilm-l6 --sizes 2000,20000

``tiny-bert`` is the default encoder because a 1M MiniLM encode takes hours on a 2-core CPU; the
build pipeline is the same for every encoder, only the encode stage's constant changes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kira import benchmarks


def synth_corpus(path: Path, n: int, words: int = 100, vocab: int = 20000, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    lex = np.array([f"w{i:x}" for i in range(vocab)])
    with path.open("w") as f:
        for start in range(0, n, 10_000):
            m = min(10_000, n - start)
            ranks = np.minimum(rng.zipf(1.2, size=(m, words)) - 1, vocab - 1)
            for j in range(m):
                toks = lex[ranks[j]]
                f.write(json.dumps({"id": f"d{start + j}", "title": f"{toks[0]} {toks[1]}",
                                    "text": " ".join(toks)}) + "\n")


def run_child(workspace: Path, corpus: Path, encoder: str, faiss_type: str, shard_size: int) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}
    (workspace / "kira.toml").parent.mkdir(parents=True, exist_ok=True)
    (workspace / "kira.toml").write_text(f"[index]\nshard_size = {shard_size}\n")
    cmd = [sys.executable, "-m", "kira.index_build", "build", "--index", str(workspace),
           "--source", f"jsonl:{corpus}", "--encoder", encoder, "--faiss-type", faiss_type, "--json"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        raise SystemExit(f"build failed (status {status}): {out[-2000:]}")
    res = json.loads(out.strip().splitlines()[-1])
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime,
            "passages": res["passages"], "stages": res["stats"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated corpus sizes")
    ap.add_argument("--encoder", default="tiny-bert")
    ap.add_argument("--faiss-type", default="flat")
    ap.add_argument("--shard-size", type=int, default=8192)
    ap.add_argument("--json-out", default=None, help="write the raw results as JSON here")
    ap.add_argument("--out", default=None, help="write the record (kira.benchmarks schema) here, "
                    "e.g. bench/regressions/index_build_scale.yaml")
    args = ap.parse_args()
    load = benchmarks.machine_load()
    try:
        out = benchmarks.out_path(args.out, __file__)
    except ValueError as e:
        ap.error(str(e))
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="kira-scale-") as tmp:
        for n in sizes:
            corpus = Path(tmp) / f"corpus-{n}.jsonl"
            synth_corpus(corpus, n)
            r = run_child(Path(tmp) / f"ws-{n}", corpus, args.encoder, args.faiss_type, args.shard_size)
            r["n"] = n
            rows.append(r)
            st = r["stages"]
            print(f"N={n:>8}  wall {r['wall_s']:8.1f}s  cpu {r['cpu_s']:8.1f}s  "
                  f"{1e3 * r['wall_s'] / n:7.3f} ms/passage  peak RSS {r['peak_rss_mb']:7.0f} MB  "
                  f"(encode {st.get('encode_s', 0):.1f}s @ {st.get('encode_psg_per_s', 0):.0f} psg/s, "
                  f"lucene {st.get('lucene_s', 0):.1f}s, faiss {st.get('faiss_s', 0):.1f}s)", flush=True)
            corpus.unlink()
    base = rows[0]
    metrics = []
    print(f"\nratios against N={base['n']} (same run, encoder {args.encoder}, faiss {args.faiss_type}):")
    for r in rows[1:]:
        size_ratio = r["n"] / base["n"]
        tpp = (r["wall_s"] / r["n"]) / (base["wall_s"] / base["n"])
        cpp = (r["cpu_s"] / r["n"]) / (base["cpu_s"] / base["n"])
        rss = r["peak_rss_mb"] / base["peak_rss_mb"]
        per_psg_kb = 1024 * (r["peak_rss_mb"] - base["peak_rss_mb"]) / (r["n"] - base["n"])
        print(f"  N={r['n']:>8} ({size_ratio:.0f}x passages): wall time/passage ratio {tpp:.2f}, "
              f"cpu time/passage ratio {cpp:.2f}, peak RSS ratio {rss:.2f} "
              f"(+{per_psg_kb:.2f} KB per extra passage)")
        peer = f"same figure at N={base['n']}, same run"
        metrics += [
            benchmarks.metric(f"wall ms per passage at N={r['n']}", round(1e3 * r["wall_s"] / r["n"], 4), peer,
                              round(1e3 * base["wall_s"] / base["n"], 4), tpp),
            benchmarks.metric(f"cpu ms per passage at N={r['n']}", round(1e3 * r["cpu_s"] / r["n"], 4), peer,
                              round(1e3 * base["cpu_s"] / base["n"], 4), cpp),
            benchmarks.metric(f"peak RSS MB at N={r['n']}", round(r["peak_rss_mb"], 1), peer,
                              round(base["peak_rss_mb"], 1), rss),
        ]
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(rows, indent=2))
    if out:
        if not metrics:  # a single size: absolute figures only
            metrics = [benchmarks.metric(f"wall ms per passage at N={base['n']}", round(1e3 * base["wall_s"] / base["n"], 4)),
                       benchmarks.metric(f"peak RSS MB at N={base['n']}", round(base["peak_rss_mb"], 1))]
        details = {"encoder": args.encoder, "faiss_type": args.faiss_type, "shard_size": args.shard_size, "rows": rows}
        notes = ("goal: linear growth (time per passage ratio about 1 or below); peak RSS of each size's child "
                 "process from os.wait4; the build child is measured, this process's load figure is at start")
        benchmarks.write(out, benchmarks.record(__file__, metrics, load=load, details=details, notes=notes))


if __name__ == "__main__":
    main()
