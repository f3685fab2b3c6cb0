"""FiD answer quality vs. the number of fused passages k (Izacard & Grave 2021, Fig. 3).

Same questions, same readers, same retriever; only k changes (default 1, 5, 10, 20). For each
question set it prints EM/F1 of the FiD reader and, as the peer measured in the same run, of the
extractive reader (which reads each passage on its own and takes the best span), plus retrieval
recall@k and the ratio EM@k / EM@1.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/fid_k.py --workspace WS [--n 200] [--graph]

Readers: ``--fid DIR`` / ``--extractive DIR``, else the workspace's defaults (``models/reader-*``),
trained first by ``kira.reader.defaults.ensure_default_readers`` when missing. Question sets, all
held out by subject / start entity from the defaults' training data:

* ``single``: one-relation questions generated from the KB (``kira.reader.questions``);
* ``twohop``: two-relation-path questions (``models/reader-data/<kb>-multihop-questions.jsonl``).
  With ``--graph`` they are retrieved over text + graph expansion (``kira.graph.expansion``).

Figures from a run are kept in ``bench/regressions/fid_k.yaml``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from kira import benchmarks  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--fid", default=None, help="FiD artifact dir (default: workspace models/reader-fid)")
    ap.add_argument("--extractive", default=None, help="extractive artifact dir (default: models/reader-extractive)")
    ap.add_argument("--kb", default=None)
    ap.add_argument("--n", type=int, default=200, help="questions per set")
    ap.add_argument("--ks", default="1,5,10,20")
    ap.add_argument("--sets", default="single,twohop")
    ap.add_argument("--method", default="bm25")
    ap.add_argument("--graph", action="store_true", help="two-hop questions over text + graph expansion")
    ap.add_argument("--out", default=None, help="also write the record (kira.benchmarks schema) here, "
                    "e.g. bench/regressions/fid_k.yaml")
    args = ap.parse_args()
    load = benchmarks.machine_load()
    try:
        out = benchmarks.out_path(args.out, __file__)
    except ValueError as e:
        ap.error(str(e))

    from kira.config import load_config
    from kira.kb.store import DuckDBStore
    from kira.pipeline import default_reader_dir
    from kira.reader.defaults import ensure_default_readers
    from kira.reader.evaluate import evaluate_qa
    from kira.reader.extractive import ExtractiveReader
    from kira.reader.fid import FiDReader
    from kira.reader.questions import questions_from_kb, read_questions
    from kira.retriever import open_retrievers, resolve_version

    cfg = load_config(args.workspace)
    version = resolve_version(cfg.indexes_dir)
    store = DuckDBStore(cfg.store_path)
    kb = args.kb or ("wordnet" if "wordnet" in store.list_kbs() else store.list_kbs()[0])
    if not (args.fid and args.extractive):
        ensure_default_readers(cfg, store, kb=kb)
    retriever = open_retrievers(version, cfg)[args.method]
    sets = {}
    if "single" in args.sets:
        sets["single"] = ([r for r in questions_from_kb(store, kb, limit=3600 + 4 * args.n)
                           if r["split"] == "heldout"][: args.n], retriever)
    if "twohop" in args.sets:
        path = cfg.models_dir / "reader-data" / f"{kb}-multihop-questions.jsonl"
        two = [r for r in read_questions(path) if r.get("split") == "heldout"][: args.n]
        ret = retriever
        if args.graph:
            from kira.graph.expansion import GraphExpansionRetriever, TextPlusGraphRetriever

            ret = TextPlusGraphRetriever(retriever, GraphExpansionRetriever.from_config(cfg, store, encoder=None))
        sets["twohop"] = (two, ret)
    readers = {"fid": FiDReader.load(args.fid or default_reader_dir(cfg, "fid"), device=cfg.device),
               "extractive": ExtractiveReader.load(args.extractive or default_reader_dir(cfg, "extractive"),
                                                   device=cfg.device)}
    ks = [int(x) for x in args.ks.split(",")]
    report = {"reader": {name: r.spec for name, r in readers.items()}, "method": args.method, "kb": kb,
              "graph": args.graph, "index_version": version.name, "sets": {}}
    for name, (evalset, ret) in sets.items():
        rows = []
        for k in ks:
            t = time.perf_counter()
            res = evaluate_qa(evalset, ret, readers, k=k, topks=(k,))
            rows.append({"k": k, "recall": round(res["retrieval"][f"top{k}"], 3),
                         **{f"{r}_{m}": round(res[r][m], 3) for r in readers for m in ("em", "f1")},
                         "seconds": round(time.perf_counter() - t, 1)})
            print(f"{name:>7} k={k:>3}  FiD EM {res['fid']['em']:.3f} F1 {res['fid']['f1']:.3f}  "
                  f"extractive EM {res['extractive']['em']:.3f}  recall@k {res['retrieval'][f'top{k}']:.3f}  "
                  f"({rows[-1]['seconds']}s)", flush=True)
        for r in rows:
            for reader in readers:
                first = rows[0][f"{reader}_em"]
                r[f"{reader}_em_vs_k1"] = round(r[f"{reader}_em"] / first, 3) if first else None
        report["sets"][name] = {"n": len(evalset), "rows": rows}
    store.close()
    print(json.dumps(report))
    if out:
        write_record(out, report, args, load)


def write_record(out, report: dict, args, load) -> None:
    """FiD EM at each k against FiD EM at the first k, and against the extractive reader at the same k."""
    metrics = []
    for name, s in report["sets"].items():
        rows = s["rows"]
        for r in rows:
            if r is not rows[0]:
                metrics.append(benchmarks.metric(
                    f"{name} FiD EM at k={r['k']} ({args.method})", r["fid_em"], f"FiD EM at k={rows[0]['k']}, same run",
                    rows[0]["fid_em"], r["fid_em_vs_k1"]))
            metrics.append(benchmarks.metric(
                f"{name} FiD EM vs extractive at k={r['k']} ({args.method})", r["fid_em"],
                "extractive reader EM at the same k, same questions, same run", r["extractive_em"]))
    benchmarks.write(out, benchmarks.record(__file__, metrics, load=load, details={"args": vars(args), **report}))


if __name__ == "__main__":
    main()
