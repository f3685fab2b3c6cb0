"""Load test of the kira HTTP API on loopback: micro-batched vs one-question-at-a-time.

Starts ``kira serve run`` twice as subprocesses on 127.0.0.1 over the same workspace — one with
``--max-batch N`` (micro-batching), one with ``--max-batch 1`` (its peer, same run, same
machine) — and drives each with 1, 4 and 16 concurrent httpx clients, a bounded number of
questions per level, alternating between the two servers for ``--rounds`` rounds (median kept). Prints p50/p95 latency and throughput per level and the throughput ratio
batched / one-at-a-time at the highest concurrency (goal >= 2). Stops by itself.

    .venv/bin/python bench/serve_load.py                      # builds a small synthetic workspace
    .venv/bin/python bench/serve_load.py --workspace WS       # an existing indexed workspace

Without ``--workspace`` it builds a temporary one: synthetic passages, ``--encoder`` dense index,
``--reader`` extractive reader (default: the packaged MiniLM with an untrained QA head; the
answers are meaningless, the compute is the real model's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from kira import benchmarks

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

SUBJECTS = ["river", "mountain", "city", "composer", "planet", "bird", "lake", "painter", "island", "desert"]
PLACES = ["Europe", "Asia", "Africa", "the Andes", "Scandinavia", "the Pacific", "Siberia", "Patagonia"]


def synthetic_passages(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind, place = rnd.choice(SUBJECTS), rnd.choice(PLACES)
        name = f"{kind.title()} {chr(65 + i % 26)}{i}"
        year = rnd.randint(1200, 2000)
        text = (f"{name} is a {kind} in {place}. It was first described in {year} by explorers who "
                f"travelled through {rnd.choice(PLACES)}. Locals call {name} the pride of {place}, "
                f"and it is known for {rnd.choice(['its size', 'its history', 'its colour', 'its age'])}.")
        out.append((name, text))
    return out


def build_workspace(ws: Path, n: int, encoder: str, reader: str, fusion_depth: int = 20) -> list[str]:
    """Synthetic corpus → store → a real index version. Returns questions about it."""
    from kira.config import load_config
    from kira.index_build.build import build_index
    from kira.kb.store import DuckDBStore
    from kira.schema import Passage

    ws.mkdir(parents=True, exist_ok=True)
    (ws / "kira.toml").write_text(f'[index]\nencoder = "{encoder}"\n\n[reader]\nextractive = "{reader}"\n\n'
                                  f'[retriever]\nk = {fusion_depth}\n')
    cfg = load_config(ws)
    passages = synthetic_passages(n)
    store = DuckDBStore(cfg.store_path)
    try:
        store.add_passages(Passage(id=f"syn:{i}", title=t, text=x, source="syn") for i, (t, x) in enumerate(passages))
        store.register_source("syn", "synthetic", n_records=n)
        build_index(cfg, store, progress=False)
    finally:
        store.close()
    return questions_for(n)


def questions_for(n: int) -> list[str]:
    """Questions about the synthetic corpus (deterministic: same seed, same passages)."""
    return [f"Where is {t} and when was it first described?" for t, _ in synthetic_passages(n)]


def start_server(ws: Path, port: int, max_batch: int, max_wait_ms: float) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("KIRA_API_KEY", None)
    return subprocess.Popen([PY, "-m", "kira.serve", "run", "--workspace", str(ws), "--host", "127.0.0.1",
                             "--port", str(port), "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms),
                             "--log-level", "warning"], env=env)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 300) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            r = httpx.get(url + "/readyz", timeout=2)
            if r.status_code == 200:
                return r.json()["index_version"]
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


async def drive(url: str, questions: list[str], concurrency: int, total: int, k: int, sources: str) -> dict:
    """``total`` questions spread over ``concurrency`` clients; every latency recorded."""
    latencies: list[float] = []
    errors = 0
    batch_sizes: list[int] = []
    counter = iter(range(total))

    async def client(c: httpx.AsyncClient):
        nonlocal errors
        for i in counter:
            t = time.perf_counter()
            r = await c.post("/v1/ask", json={"question": questions[i % len(questions)], "k": k,
                                                 "sources": sources})
            latencies.append(time.perf_counter() - t)
            if r.status_code != 200:
                errors += 1
            else:
                batch_sizes.append(r.json().get("batch_size", 1))

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as c:
        await c.post("/v1/ask", json={"question": questions[0], "k": k, "sources": sources})  # warm-up
        t0 = time.perf_counter()
        await asyncio.gather(*[client(c) for _ in range(concurrency)])
        wall = time.perf_counter() - t0
    lat = sorted(latencies)
    return {"concurrency": concurrency, "requests": total, "errors": errors,
            "p50_ms": round(1000 * statistics.median(lat), 1),
            "p95_ms": round(1000 * lat[min(len(lat) - 1, int(0.95 * len(lat)))], 1),
            "throughput_qps": round(total / wall, 2),
            "mean_batch": round(statistics.mean(batch_sizes), 2) if batch_sizes else 0.0}


def peak_rss_mb(pid: int) -> float | None:
    """A process's peak resident set (VmHWM), Linux only."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def run_both(ws: Path, questions: list[str], args) -> tuple[list[dict], list[dict], dict]:
    """Both servers up at once; each level alternates batched / one-at-a-time for ``--rounds``
    rounds, so drifting machine load hits both modes alike. The median-throughput round is kept;
    every round's ratio at the highest concurrency and each server's peak RSS are returned too."""
    from kira.serve.server import free_port

    modes = {"batched": args.max_batch, "single": 1}
    procs, urls = {}, {}
    try:
        for mode, mb in modes.items():
            port = free_port()
            urls[mode] = f"http://127.0.0.1:{port}"
            procs[mode] = start_server(ws, port, mb, args.max_wait_ms)
        for mode in modes:
            wait_ready(urls[mode], procs[mode])
        out: dict[str, list[dict]] = {m: [] for m in modes}
        extra: dict = {"round_ratios_at_max": []}
        for c in args.concurrency:
            total = max(c, args.requests if c > 1 else args.requests_single)
            runs: dict[str, list[dict]] = {m: [] for m in modes}
            for _ in range(args.rounds):
                for mode in modes:
                    res = asyncio.run(drive(urls[mode], questions, c, total, args.k, args.sources))
                    res["max_batch"] = modes[mode]
                    print(json.dumps(res), flush=True)
                    runs[mode].append(res)
            for mode in modes:
                ranked = sorted(runs[mode], key=lambda r: r["throughput_qps"])
                out[mode].append(ranked[len(ranked) // 2])
            if c == max(args.concurrency):
                extra["round_ratios_at_max"] = [round(b["throughput_qps"] / s["throughput_qps"], 2)
                                                for b, s in zip(runs["batched"], runs["single"], strict=True)]
        extra["peak_rss_mb"] = {mode: peak_rss_mb(proc.pid) for mode, proc in procs.items()}
        return out["batched"], out["single"], extra
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workspace", type=Path,
                    help="workspace dir: reused if it holds an index, else the synthetic one is built there "
                         "(default: a temporary directory)")
    ap.add_argument("--passages", type=int, default=300)
    ap.add_argument("--questions", type=Path, help="JSONL with a 'question' per line (e.g. a natural dev set) "
                    "to ask instead of the synthetic corpus's questions")
    ap.add_argument("--encoder", default="minilm-l6")
    ap.add_argument("--reader", default="minilm-l6")
    ap.add_argument("--k", type=int, default=3, help="passages read per question")
    ap.add_argument("--sources", default="text", help="evidence kinds asked for (the demo workspace's WordNet "
                    "passages are KB passages: use 'all' there)")
    ap.add_argument("--fusion-depth", type=int, default=20,
                    help="retriever.k of a built workspace: hits per retriever fused by hybrid search")
    ap.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16])
    ap.add_argument("--requests", type=int, default=48, help="questions per concurrency level")
    ap.add_argument("--requests-single", type=int, default=12, help="questions at concurrency 1")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per level (median kept)")
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--out", default=None, help="also write the record (kira.benchmarks schema) here, "
                    "e.g. bench/regressions/serve_load.yaml")
    args = ap.parse_args()
    load = benchmarks.machine_load()
    try:
        out = benchmarks.out_path(args.out, __file__)
    except ValueError as e:
        ap.error(str(e))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

    with tempfile.TemporaryDirectory(prefix="kira-serve-load-") as tmp:
        ws = args.workspace or Path(tmp) / "ws"
        if (ws / "indexes" / "current").exists():
            questions = questions_for(args.passages)
            print(f"# reusing workspace {ws}", flush=True)
        else:
            t = time.perf_counter()
            questions = build_workspace(ws, args.passages, args.encoder, args.reader, args.fusion_depth)
            print(f"# built {args.passages}-passage workspace ({args.encoder} index, {args.reader} reader) "
                  f"in {time.perf_counter() - t:.1f}s", flush=True)
        print(f"# cpus={os.cpu_count()} KIRA_THREADS={os.environ.get('KIRA_THREADS', 'all')} k={args.k} "
              f"requests/level={args.requests} max_wait_ms={args.max_wait_ms}", flush=True)
        if args.questions:
            from kira.jsonl import iter_jsonl

            questions = [r["question"] for _, r in iter_jsonl(args.questions)]
        batched, single, extra = run_both(ws, questions, args)

    print(f"\n{'mode':<16}{'clients':>8}{'p50 ms':>10}{'p95 ms':>10}{'qps':>9}{'batch':>7}{'errors':>8}")
    for rows, mode in ((batched, f"batched({args.max_batch})"), (single, "one-at-a-time")):
        for r in rows:
            print(f"{mode:<16}{r['concurrency']:>8}{r['p50_ms']:>10}{r['p95_ms']:>10}{r['throughput_qps']:>9}"
                  f"{r['mean_batch']:>7}{r['errors']:>8}")
    top = max(args.concurrency)
    b = next(r for r in batched if r["concurrency"] == top)["throughput_qps"]
    s = next(r for r in single if r["concurrency"] == top)["throughput_qps"]
    ratio = b / s if s else float("inf")
    print(f"\nthroughput ratio batched/one-at-a-time at {top} clients: {ratio:.2f} (goal >= 2); "
          f"each round: {extra['round_ratios_at_max']}; server peak RSS MB: {extra['peak_rss_mb']}")
    print(json.dumps({"ratio_at_max_concurrency": round(ratio, 2), "batched": batched, "single": single, **extra}))
    if out:
        metrics = [benchmarks.metric(
            f"batched q/s at {top} clients", b, "the same server one question at a time (--max-batch 1), same run",
            s, b / s if s else None, ">= 2")]
        one = next((r for r in batched if r["concurrency"] == 1), None)
        if one:
            metrics.append(benchmarks.metric("p50 ms at 1 client (batching server)", one["p50_ms"], goal="<= 300"))
        hi = next(r for r in batched if r["concurrency"] == top)
        metrics.append(benchmarks.metric(f"p95/p50 at {top} clients (batching server)",
                                         round(hi["p95_ms"] / hi["p50_ms"], 2), goal="<= 2"))
        rss = extra["peak_rss_mb"].get("batched")
        if rss is not None:
            metrics.append(benchmarks.metric("server peak RSS MB (batching server)", rss, goal="<= 4096"))
        details = {"args": vars(args), "kira_threads": os.environ.get("KIRA_THREADS", "all"),
                   "batched": batched, "one_at_a_time": single, **extra}
        benchmarks.write(out, benchmarks.record(__file__, metrics, load=load, details=details))


if __name__ == "__main__":
    main()
