"""Reliability soak: a real server answering while CLI writers rebuild, plug KBs in and out and get
killed with SIGKILL; counts failed requests, refused writers and broken versions.

    python bench/reliability_soak.py --rounds 6 --kills 4 --clients 8 --out bench/regressions/reliability_soak.yaml

Everything is a separate process (server: `kira serve run`; writers: `kira index build`,
`kira kb add/remove`, `kira tables add/remove`), on a workspace with the `tiny-bert` encoder so the
figures are about the concurrency model, not model speed. The peer is the same workload with no
writer running (request count and p95 latency), measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from kira import benchmarks

TOML = """[index]\nencoder = "tiny-bert"\nbatch_size = 16\n[reader]\nextractive = "tiny-bert"\nk = 4\n[serve]\nwatch_interval_s = 0.2\n"""
GEO = "Danube\tflows_through\tVienna\nDanube\tflows_through\tBudapest\nVienna\tcapital_of\tAustria\n"


def env(ws: Path) -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "KIRA_WORKSPACE": str(ws), "TOKENIZERS_PARALLELISM": "false"}


def kira(ws: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kira", *args], capture_output=True, text=True, env=env(ws),
                          timeout=600)


def ask(port: int) -> tuple[int, float, str]:
    body = json.dumps({"question": "What does the Danube flow through?", "k": 4, "sources": "all",
                       "reader": "extractive"}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/ask", data=body,
                                 headers={"content-type": "application/json"})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, time.perf_counter() - t, json.loads(r.read())["index_version"]
    except urllib.error.HTTPError as e:
        return e.code, time.perf_counter() - t, ""
    except OSError:
        return 0, time.perf_counter() - t, ""


class Load:
    """``clients`` threads asking in a loop until stopped."""

    def __init__(self, port: int, clients: int):
        self.port, self.clients = port, clients
        self.results: list[tuple[int, float, str]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        while not self._stop.is_set():
            self.results.append(ask(self.port))

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=120)

    def summary(self, seconds: float) -> dict:
        lat = sorted(r[1] for r in self.results)
        return {"requests": len(self.results), "failed": sum(r[0] != 200 for r in self.results),
                "versions_seen": len({r[2] for r in self.results if r[2]}),
                "req_per_s": round(len(lat) / seconds, 1),
                "p50_ms": round(1000 * lat[len(lat) // 2], 1) if lat else None,
                "p95_ms": round(1000 * lat[int(len(lat) * 0.95)], 1) if lat else None}


def make_workspace(root: Path, docs: int) -> Path:
    ws = root / "ws"
    ws.mkdir()
    (ws / "kira.toml").write_text(TOML)
    with (root / "docs.jsonl").open("w") as f:
        for i in range(docs):
            f.write(json.dumps({"id": f"d{i}", "title": f"Doc {i}",
                                "text": f"document {i} about the river number {i % 17} " * 5}) + "\n")
    (root / "geo.tsv").write_text(GEO)
    (root / "cities.csv").write_text("city,country\nVienna,Austria\nBudapest,Hungary\n")
    r = kira(ws, "index", "build", "--source", f"jsonl:{root / 'docs.jsonl'}", "--name", "docs")
    assert r.returncode == 0, r.stderr
    r = kira(ws, "kb", "add", "geo", str(root / "geo.tsv"))
    assert r.returncode == 0, r.stderr
    return ws


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=6, help="writer rounds while the server serves")
    ap.add_argument("--kills", type=int, default=4, help="SIGKILLed builds")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--out", help="write the record (kira.benchmarks schema) here, "
                    "e.g. bench/regressions/reliability_soak.yaml")
    args = ap.parse_args()
    try:
        out_file = benchmarks.out_path(args.out, __file__)
    except ValueError as e:
        ap.error(str(e))
    load_avg = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="kira-soak-"))
    ws = make_workspace(root, args.docs)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "kira", "serve", "run", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(ws))
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        t = time.perf_counter()
        with Load(port, args.clients) as idle:  # the peer: same load, no writer
            time.sleep(20)
        peer = idle.summary(time.perf_counter() - t)

        writers = {"ok": 0, "failed": 0, "errors": []}
        t = time.perf_counter()
        with Load(port, args.clients) as busy:
            for i in range(args.rounds):
                steps = [("index", "build", "--full"), ("kb", "remove", "geo"), ("kb", "add", "geo", str(root / "geo.tsv")),
                         ("tables", "add", str(root / "cities.csv")), ("kb", "list"),
                         ("tables", "remove", "cities"), ("index", "build")]
                procs = [subprocess.Popen([sys.executable, "-m", "kira", *steps[0]],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env(ws))]
                for step in steps[1:]:  # the rest race the first: they must take turns, not fail
                    r = kira(ws, *step)
                    writers["ok" if r.returncode == 0 else "failed"] += 1
                    if r.returncode:
                        writers["errors"].append(r.stderr.strip().splitlines()[-1:])
                for p in procs:
                    _, err = p.communicate(timeout=600)
                    writers["ok" if p.returncode == 0 else "failed"] += 1
                    if p.returncode:
                        writers["errors"].append(err.strip().splitlines()[-1:])
                print(f"round {i + 1}/{args.rounds}: writers ok {writers['ok']} failed {writers['failed']}",
                      flush=True)
        during = busy.summary(time.perf_counter() - t)

        kills = {"killed": 0, "rebuilt_ok": 0, "verify_ok": 0}
        for _ in range(args.kills):
            p = subprocess.Popen([sys.executable, "-m", "kira", "index", "build", "--no-resume"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(ws))
            time.sleep(random.uniform(3, 9))
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                kills["killed"] += 1
            p.wait()
            kills["rebuilt_ok"] += kira(ws, "index", "build", "--full").returncode == 0
            kills["verify_ok"] += kira(ws, "index", "verify").returncode == 0
        ok, a, _ = ask(port)
        kills["server_answers_after"] = ok == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    out = {"name": "reliability_soak", "command": " ".join(["python", *sys.argv]),
           "machine_load_1m": round(load_avg, 2), "no_writer": peer, "with_writers": during,
           "writers": {k: v for k, v in writers.items() if k != "errors"}, "writer_errors": writers["errors"][:5],
           "sigkill": kills,
           "ratio_req_per_s_with_vs_without_writers": round(during["req_per_s"] / max(peer["req_per_s"], 1e-9), 3)}
    print(json.dumps(out, indent=2))
    if out_file:
        write_record(out_file, out, args, round(load_avg, 2))


def write_record(path: Path, out: dict, args, load: float) -> None:
    """Serving with writers against the same load without writers; failures and broken builds must be zero."""
    peer_desc = "the same clients with no writer running, same server, same run"
    during, peer, kills = out["with_writers"], out["no_writer"], out["sigkill"]
    metrics = [benchmarks.metric("requests/s with writers", during["req_per_s"], peer_desc, peer["req_per_s"])]
    if during["p95_ms"] is not None and peer["p95_ms"] is not None:
        metrics.append(benchmarks.metric("p95 ms with writers", during["p95_ms"], peer_desc, peer["p95_ms"]))
    metrics += [
        benchmarks.metric("failed requests with writers", during["failed"], goal="== 0"),
        benchmarks.metric("failed writers", out["writers"]["failed"], goal="== 0"),
        benchmarks.metric("index verify ok after SIGKILLed builds", kills["verify_ok"],
                          "SIGKILL rounds (--kills)", args.kills, goal=">= 1.0"),
    ]
    details = {k: v for k, v in out.items() if k not in ("name", "command", "machine_load_1m")}
    benchmarks.write(path, benchmarks.record(__file__, metrics, load=load, details=details))


if __name__ == "__main__":
    main()
