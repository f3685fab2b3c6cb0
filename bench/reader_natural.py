"""Readers on the blind natural dev sets, beside the answer-free baselines of the same run.

    python bench/reader_natural.py --workspace WS --questions bench/data/natural-dev-wordnet.jsonl \
        [--reader DIR] [--k 20] [--method hybrid] --out bench/regressions/reader_natural.yaml

Runs ``kira eval qa`` (retrieval top-k, extractive EM/F1, the top-1-title and most-frequent-entity
baselines, the coverage-accuracy curve) and records the reader against the best baseline. The dev
sets are never used for training, thresholds or early stopping.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from kira import benchmarks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--reader", default=None, help="reader artifact (default: the workspace's)")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--method", default=None)
    ap.add_argument("--out", default=None, help="write the record (kira.benchmarks schema) here")
    args = ap.parse_args()
    out_file = benchmarks.out_path(args.out, __file__)
    load = benchmarks.machine_load()
    cmd = [sys.executable, "-m", "kira", "eval", "qa", "--index", args.workspace, "--questions", args.questions,
           "--k", str(args.k), "--json"] + (["--reader", args.reader] if args.reader else []) \
        + (["--method", args.method] if args.method else [])
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    print(json.dumps(res, indent=2, default=str))
    if out_file is not None:
        em = res["extractive"]["em"]
        base = max(res["baselines"].values(), key=lambda b: b["em"])["em"] if res.get("baselines") else None
        metrics = [benchmarks.metric("extractive EM", em, goal=">= 0.70 (issue #16, WordNet set)"),
                   benchmarks.metric("extractive EM vs best answer-free baseline", em,
                                     "best answer-free baseline, same run", base)]
        benchmarks.write(out_file, benchmarks.record(__file__, metrics, load=load, details=res))


if __name__ == "__main__":
    main()
