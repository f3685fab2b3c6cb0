"""kira's TransE/TransH/TransD vs PyKEEN on PyKEEN's bundled Nations, Kinships and UMLS.

Same id mapping (PyKEEN's triples factory), same dimension, epochs, batch size, negatives per
positive (basic head/tail corruption), Adam learning rate, margin ranking loss (margin 1), seed
and thread count. Each trained model is evaluated twice on the test split (filtered, both sides,
realistic ranks): by PyKEEN's own rank-based evaluator (fed kira's score matrices through PyKEEN's
filtering and ``process_scores_``) and by kira's ``kira.kb.evaluate``. Prints MRR, Hits@10 and the
training-throughput ratio (triples/s kira / PyKEEN).

    HF_HUB_OFFLINE=1 .venv/bin/python bench/kb_pykeen.py            # nations, kinships, umls; TransE
    .venv/bin/python bench/kb_pykeen.py --datasets nations --models transe,transh,transd
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from kira import benchmarks
from kira.kb.evaluate import evaluate_link_prediction
from kira.kb.kge_models import MODEL_CLASSES
from kira.kb.kge_train import TrainConfig, train_ids

PYKEEN_MODELS = {"transe": "TransE", "transh": "TransH", "transd": "TransD"}


def load_dataset(name: str):
    from pykeen.datasets import get_dataset

    return get_dataset(dataset=name)


def pykeen_eval(score_tails, score_heads, test, known) -> dict[str, float]:
    """PyKEEN's RankBasedEvaluator over arbitrary score functions (PyKEEN filtering, PyKEEN metrics)."""
    from pykeen.evaluation import RankBasedEvaluator
    from pykeen.evaluation.evaluator import create_sparse_positive_filter_, filter_scores_

    ev = RankBasedEvaluator(filtered=True)
    for target, col in (("head", 0), ("tail", 2)):
        for s in range(0, len(test), 256):
            batch = test[s:s + 256]
            with torch.inference_mode():
                scores = (score_heads(batch[:, 1], batch[:, 2]) if col == 0 else score_tails(batch[:, 0], batch[:, 1]))
            scores = scores.float().clone()
            flt, _ = create_sparse_positive_filter_(hrt_batch=batch, all_pos_triples=known, filter_col=col)
            idx = torch.arange(len(batch))
            true = scores[idx, batch[:, col]].clone()
            scores = filter_scores_(scores=scores, filter_batch=flt)
            scores[idx, batch[:, col]] = true
            ev.process_scores_(hrt_batch=batch, target=target, scores=scores, true_scores=true[:, None])
    res = ev.finalize()
    return {"mrr": float(res.get_metric("both.realistic.inverse_harmonic_mean_rank")),
            "hits_at_10": float(res.get_metric("both.realistic.hits_at_10"))}


def run_pykeen(ds, model_name: str, cfg: TrainConfig):
    from pykeen.losses import MarginRankingLoss
    from pykeen.models import model_resolver
    from pykeen.training import SLCWATrainingLoop

    tf = ds.training
    kw = {"scoring_fct_norm": cfg.p_norm} if model_name == "transe" else {}
    model = model_resolver.make(PYKEEN_MODELS[model_name], triples_factory=tf, embedding_dim=cfg.dim,
                                loss=MarginRankingLoss(margin=cfg.margin), random_seed=cfg.seed, **kw)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    loop = SLCWATrainingLoop(model=model, triples_factory=tf, optimizer=opt, negative_sampler="basic",
                             negative_sampler_kwargs={"num_negs_per_pos": cfg.num_negs})
    t0 = time.perf_counter()
    loop.train(triples_factory=tf, num_epochs=cfg.epochs, batch_size=cfg.batch_size, use_tqdm=False)
    secs = time.perf_counter() - t0
    model.eval()
    return model, len(tf.mapped_triples) * cfg.epochs / secs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="nations,kinships,umls")
    ap.add_argument("--models", default="transe")
    ap.add_argument("--dim", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--negs", type=int, default=1)
    ap.add_argument("--seeds", default="0", help="comma-separated; with several, means are printed too")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", dest="json_out", default=None, help="also write the rows to this file")
    ap.add_argument("--out", default=None, help="also write the record (kira.benchmarks schema) here, "
                    "e.g. bench/regressions/kb_pykeen.yaml")
    args = ap.parse_args()
    load = benchmarks.machine_load()
    try:
        out = benchmarks.out_path(args.out, __file__)
    except ValueError as e:
        ap.error(str(e))
    torch.set_num_threads(args.threads)
    rows = []
    header = f"{'dataset':9} {'model':7} {'sys:seed':9} {'MRR(pykeen-ev)':>12} {'MRR(kira-ev)':>12} {'H@10(pykeen-ev)':>15} {'H@10(kira-ev)':>13} {'triples/s':>10}"
    print(header)
    for dname in args.datasets.split(","):
        ds = load_dataset(dname)
        E, R = ds.training.num_entities, ds.training.num_relations
        test = ds.testing.mapped_triples
        known = torch.cat([ds.training.mapped_triples, ds.validation.mapped_triples, test])
        for mname, seed in [(m, int(s)) for m in args.models.split(",") for s in args.seeds.split(",")]:
            cfg = TrainConfig(model=mname, dim=args.dim, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, num_negs=args.negs, seed=seed, device="cpu")
            # kira
            torch.manual_seed(seed)
            km = MODEL_CLASSES[mname](E, R, cfg.dim, cfg.p_norm, cfg.seed)
            rep = train_ids(km, ds.training.mapped_triples, cfg, E)
            k_tails, k_heads = km.score_t, km.score_h
            # pykeen
            pm, p_tps = run_pykeen(ds, mname, cfg)

            def p_tails(h, r, pm=pm):
                return pm.score_t(torch.stack([h, r], 1))

            def p_heads(r, t, pm=pm):
                return pm.score_h(torch.stack([r, t], 1))

            for system, st, sh, tps in (("kira", k_tails, k_heads, rep["triples_per_s"]), ("pykeen", p_tails, p_heads, p_tps)):
                with torch.inference_mode():
                    pe = pykeen_eval(st, sh, test, known)
                    ke = evaluate_link_prediction(st, sh, test, known, E, R)
                row = {"dataset": dname, "model": mname, "seed": seed, "system": system, "mrr_pykeen_eval": pe["mrr"],
                       "mrr_kira_eval": ke.mrr, "hits10_pykeen_eval": pe["hits_at_10"],
                       "hits10_kira_eval": ke.hits_at_10, "triples_per_s": tps}
                rows.append(row)
                print(f"{dname:9} {mname:7} {system + ':' + str(seed):9} {pe['mrr']:12.4f} {ke.mrr:12.4f} {pe['hits_at_10']:15.4f} "
                      f"{ke.hits_at_10:13.4f} {tps:10.0f}", flush=True)
            k, p = rows[-2], rows[-1]
            print(f"{dname:9} {mname:7} ratio   MRR kira/pykeen {k['mrr_kira_eval'] / p['mrr_kira_eval']:.3f}   "
                  f"throughput kira/pykeen {k['triples_per_s'] / p['triples_per_s']:.2f}x", flush=True)
    if len(args.seeds.split(",")) > 1:
        print("means over seeds:")
        for key in sorted({(r["dataset"], r["model"]) for r in rows}):
            sel = {s: [r for r in rows if (r["dataset"], r["model"]) == key and r["system"] == s] for s in ("kira", "pykeen")}
            mean = {s: {m: sum(r[m] for r in v) / len(v) for m in ("mrr_kira_eval", "hits10_kira_eval", "triples_per_s")}
                    for s, v in sel.items()}
            print(f"{key[0]:9} {key[1]:7} MRR kira {mean['kira']['mrr_kira_eval']:.4f} pykeen {mean['pykeen']['mrr_kira_eval']:.4f} "
                  f"(ratio {mean['kira']['mrr_kira_eval'] / mean['pykeen']['mrr_kira_eval']:.3f})  H@10 kira "
                  f"{mean['kira']['hits10_kira_eval']:.4f} pykeen {mean['pykeen']['hits10_kira_eval']:.4f}  throughput "
                  f"{mean['kira']['triples_per_s'] / mean['pykeen']['triples_per_s']:.2f}x")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=2)
    if out:
        write_record(out, args, rows, load)


def write_record(out, args, rows: list[dict], load) -> None:
    """Per dataset/model/seed: kira's MRR and training throughput against PyKEEN's of the same run."""
    metrics = []
    by = {(r["dataset"], r["model"], r["seed"], r["system"]): r for r in rows}
    for d, m, seed, system in by:
        if system != "kira":
            continue
        k, p = by[d, m, seed, "kira"], by[d, m, seed, "pykeen"]
        peer = f"PyKEEN {PYKEEN_MODELS[m]}, same settings, same run"
        metrics += [
            benchmarks.metric(f"{d} {m} MRR (seed {seed})", round(k["mrr_kira_eval"], 4), peer,
                              round(p["mrr_kira_eval"], 4), k["mrr_kira_eval"] / p["mrr_kira_eval"], ">= 1.0"),
            benchmarks.metric(f"{d} {m} training triples/s (seed {seed})", round(k["triples_per_s"]), peer,
                              round(p["triples_per_s"]), k["triples_per_s"] / p["triples_per_s"], ">= 2"),
        ]
    if len(args.seeds.split(",")) > 1:
        for d, m in sorted({(r["dataset"], r["model"]) for r in rows}):
            mean = {s: sum(r["mrr_kira_eval"] for r in rows if (r["dataset"], r["model"], r["system"]) == (d, m, s))
                    / len(args.seeds.split(",")) for s in ("kira", "pykeen")}
            metrics.append(benchmarks.metric(
                f"{d} {m} MRR (mean of seeds {args.seeds})", round(mean["kira"], 4),
                f"PyKEEN {PYKEEN_MODELS[m]}, same settings, same runs", round(mean["pykeen"], 4),
                mean["kira"] / mean["pykeen"], ">= 1.0"))
    machine = benchmarks.machine(f"{args.threads} CPU thread(s) for both")
    benchmarks.write(out, benchmarks.record(__file__, metrics, load=load, machine_desc=machine,
                                            details={"args": vars(args), "rows": rows}))


if __name__ == "__main__":
    main()
