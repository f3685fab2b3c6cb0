"""FiD answer quality vs. the number of fused passages k (Izacard & Grave 2021, Fig. 3).

Same questions, same FiD reader, same retriever; only k changes (default 1, 5, 10, 20). Prints EM/F1
and retrieval recall at each k, and the ratio EM@k / EM@1 (the peer measured in the same run).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/fid_k.py --workspace WS [--reader DIR] [--n 200]

Without ``--reader`` it uses the workspace's FiD reader (``models/reader-fid``), training a small
one first (bounded by ``--train-seconds``) on synthetic questions from the workspace's KB when
none exists. Questions: ``--questions FILE`` or the KB's generated held-out split.
Figures from a run are kept in ``bench/regressions/fid_k.yaml``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--reader", default=None, help="FiD artifact dir (default: workspace models/reader-fid)")
    ap.add_argument("--questions", default=None)
    ap.add_argument("--kb", default=None)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--ks", default="1,5,10,20")
    ap.add_argument("--method", default="bm25")
    ap.add_argument("--train-seconds", type=float, default=600)
    ap.add_argument("--train-questions", type=int, default=3000)
    ap.add_argument("--train-k", type=int, default=10, help="passages fused per question in training")
    ap.add_argument("--base", default="bert2bert:minilm-l6", help="base model when a FiD reader must be trained")
    ap.add_argument("--max-length", type=int, default=96)
    args = ap.parse_args()

    from kira.config import load_config
    from kira.kb.store import DuckDBStore
    from kira.pipeline import default_reader_dir
    from kira.reader.evaluate import evaluate_qa
    from kira.reader.fid import FiDReader
    from kira.reader.questions import questions_from_kb, read_questions
    from kira.reader.train import TrainOptions, train_reader
    from kira.retriever import open_retrievers, resolve_version

    cfg = load_config(args.workspace)
    version = resolve_version(cfg.indexes_dir)
    retriever = open_retrievers(version, cfg)[args.method]
    store = DuckDBStore(cfg.store_path)
    kb = args.kb or ("wordnet" if "wordnet" in store.list_kbs() else store.list_kbs()[0])
    records = questions_from_kb(store, kb, limit=args.train_questions + 4 * args.n)
    reader_dir = args.reader or str(default_reader_dir(cfg, "fid"))
    if not os.path.exists(os.path.join(reader_dir, "kira.json")):
        reader_dir = str(cfg.models_dir / f"bench-fid-k-{args.base.replace(':', '-')}")
        if not os.path.exists(os.path.join(reader_dir, "kira.json")):
            print(f"training a FiD reader (k={args.train_k}, ≤{args.train_seconds:.0f}s) → {reader_dir}", flush=True)
            lr = 3e-4 if "minilm" in args.base else 3e-3
            # the default readers' recipe (kira.reader.defaults): frozen encoder, cached states, many epochs
            train_reader(records, TrainOptions(kind="fid", base=args.base, n_passages=args.train_k,
                                               max_length=args.max_length, batch_size=8, lr=lr, epochs=30,
                                               freeze_encoder=True, max_questions=args.train_questions,
                                               max_seconds=args.train_seconds, device=cfg.device,
                                               log=lambda m: print(m, flush=True)),
                         retriever=retriever, out=reader_dir)
    store.close()
    if args.questions:
        evalset = read_questions(args.questions)
        evalset = [r for r in evalset if r.get("split") == "heldout"] or evalset
    else:
        evalset = [r for r in records if r["split"] == "heldout"]
    evalset = evalset[: args.n]
    reader = FiDReader.load(reader_dir, device=cfg.device)
    ks = [int(x) for x in args.ks.split(",")]
    rows = []
    for k in ks:
        t = time.perf_counter()
        res = evaluate_qa(evalset, retriever, {"fid": reader}, k=k, topks=(k,))
        rows.append({"k": k, "em": res["fid"]["em"], "f1": res["fid"]["f1"], "recall": res["retrieval"][f"top{k}"],
                     "seconds": round(time.perf_counter() - t, 1)})
        print(f"k={k:>3}  EM {res['fid']['em']:.3f}  F1 {res['fid']['f1']:.3f}  recall@k "
              f"{res['retrieval'][f'top{k}']:.3f}  ({rows[-1]['seconds']}s)", flush=True)
    base = rows[0]
    for r in rows:
        r["em_ratio_vs_k1"] = (r["em"] / base["em"]) if base["em"] else None
        r["f1_ratio_vs_k1"] = (r["f1"] / base["f1"]) if base["f1"] else None
    print(json.dumps({"n": len(evalset), "reader": reader_dir, "method": args.method, "kb": kb,
                      "index_version": version.name, "rows": rows}))


if __name__ == "__main__":
    main()
