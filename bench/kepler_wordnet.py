"""KEPLER vs TransE on a WordNet subset, transductive and inductive (entity-disjoint) link prediction.

Subset: noun synsets under ``animal`` and ``body part`` (hyponym closure, breadth first, capped),
with the relations hypernym (@), part meronym (%p) and member meronym (%m) between them (no
inverse relations, so a test fact cannot be read off its inverse in training).

* transductive: 10% of triples held out, both ends seen in training;
* inductive: 10% of entities held out with every triple touching them; test triples touch at
  least one unseen entity, candidates are all entities (seen + unseen).

KEPLER embeds entities from ``"<lemma>: <gloss>"`` with the zoo encoder, so it ranks unseen
entities; TransE gives unseen entities untrained vectors (shown for contrast). Metrics are
filtered MRR / Hits@10, both sides, realistic ties, from ``kira.kb.evaluate``.

    HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error .venv/bin/python bench/kepler_wordnet.py
    .venv/bin/python bench/kepler_wordnet.py --encoder tiny-bert --kepler-lr 1e-2   # fast smoke run
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import deque

import torch

from kira import benchmarks
from kira.kb.embeddings import KGEmbedder
from kira.kb.evaluate import evaluate_embedder
from kira.kb.kepler import Kepler
from kira.kb.wordnet import iter_synsets
from kira.schema import Entity, Triple

SEEDS = {"n.00015388": "animal", "n.05220461": "body part"}
RELATIONS = ("@", "%p", "%m")


def wordnet_subset(wn_dir: str, cap: int) -> tuple[dict[str, Entity], list[Triple]]:
    syn = {s.id: s for s in iter_synsets(wn_dir, pos="n")}
    chosen: list[str] = []
    for seed in SEEDS:
        q, seen = deque([seed]), {seed}
        while q and len(seen) <= cap // len(SEEDS):
            s = syn[q.popleft()]
            for sym, target, _a, _b in s.pointers:
                if sym in ("~", "~i") and target not in seen:
                    seen.add(target)
                    q.append(target)
        chosen.extend(sorted(seen))
    ids = set(chosen)
    ents = {i: Entity(id=i, kb="wn", name=syn[i].lemmas[0], aliases=syn[i].lemmas[1:], description=syn[i].gloss)
            for i in sorted(ids)}
    triples = sorted({(s, sym, t) for s in ids for sym, t, _a, _b in syn[s].pointers if sym in RELATIONS and t in ids})
    return ents, [Triple("wn", h, r, t) for h, r, t in triples]


def transductive_split(triples: list[Triple], rng: random.Random, frac: float = 0.1):
    order = triples[:]
    rng.shuffle(order)
    n_test = int(len(order) * frac)
    test, train = order[:n_test], order[n_test:]
    seen = {x for t in train for x in (t.head, t.tail)}
    moved = [t for t in test if t.head not in seen or t.tail not in seen]
    test = [t for t in test if t.head in seen and t.tail in seen]
    return train + moved, test


def inductive_split(ents: dict[str, Entity], triples: list[Triple], rng: random.Random, frac: float = 0.1):
    ids = sorted(ents)
    rng.shuffle(ids)
    unseen = set(ids[: int(len(ids) * frac)])
    train = [t for t in triples if t.head not in unseen and t.tail not in unseen]
    test = [t for t in triples if t.head in unseen or t.tail in unseen]
    return train, test, unseen


def row(name: str, split: str, res, secs: float) -> dict:
    print(f"{name:18} {split:13} MRR {res.mrr:.4f}  Hits@10 {res.hits_at_10:.4f}  Hits@1 {res.hits_at_1:.4f}  "
          f"n={res.n}  ({secs:.0f}s)", flush=True)
    return {"model": name, "split": split, "mrr": res.mrr, "hits_at_10": res.hits_at_10, "hits_at_1": res.hits_at_1,
            "n": res.n, "seconds": secs}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wordnet", default="/usr/share/wordnet")
    ap.add_argument("--entities", type=int, default=1200, help="cap on synsets in the subset")
    ap.add_argument("--encoder", default="minilm-l6")
    ap.add_argument("--kepler-epochs", type=int, default=1)
    ap.add_argument("--kepler-lr", type=float, default=1e-4)
    ap.add_argument("--kepler-batch", type=int, default=16)
    ap.add_argument("--kepler-negs", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=24)
    ap.add_argument("--transe-dim", type=int, default=50)
    ap.add_argument("--transe-epochs", type=int, default=200)
    ap.add_argument("--max-test", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (1 is fastest on a busy host)")
    ap.add_argument("--json", dest="json_out", default=None)
    ap.add_argument("--out", default=None, help="also write the record (kira.benchmarks schema) here, "
                    "e.g. bench/regressions/kepler_wordnet.yaml")
    args = ap.parse_args()
    load = benchmarks.machine_load()
    try:
        out = benchmarks.out_path(args.out, __file__)
    except ValueError as e:
        ap.error(str(e))
    torch.set_num_threads(args.threads)
    rng = random.Random(args.seed)
    ents, triples = wordnet_subset(args.wordnet, args.entities)
    print(f"subset: {len(ents)} synsets, {len(triples)} triples "
          f"({', '.join(f'{r}={sum(t.relation == r for t in triples)}' for r in RELATIONS)})")
    tr_train, tr_test = transductive_split(triples, rng)
    in_train, in_test, unseen = inductive_split(ents, triples, rng)
    tr_test, in_test = tr_test[: args.max_test], in_test[: args.max_test]
    print(f"transductive: {len(tr_train)} train / {len(tr_test)} test; inductive: {len(in_train)} train / "
          f"{len(in_test)} test, {len(unseen)} unseen entities")
    rows = []
    all_ids = sorted(ents)

    for split, train, test in (("transductive", tr_train, tr_test), ("inductive", in_train, in_test)):
        t0 = time.perf_counter()
        te = KGEmbedder("transe", dim=args.transe_dim, epochs=args.transe_epochs, batch_size=256, lr=0.01,
                        seed=args.seed, device=args.device)
        te.fit(train, entities=all_ids, relations=RELATIONS)
        rows.append(row("TransE", split, evaluate_embedder(te, test, triples), time.perf_counter() - t0))

        t0 = time.perf_counter()
        kp = Kepler(args.encoder, lr=args.kepler_lr, epochs=args.kepler_epochs, batch_size=args.kepler_batch,
                    num_negs=args.kepler_negs, max_length=args.max_length, seed=args.seed, device=args.device,
                    threads=args.threads)
        seen_ids = {x for t in train for x in (t.head, t.tail)}
        kp.fit(train, entities=[ents[i] for i in sorted(seen_ids)], relations=RELATIONS,
               log_every=max(1, len(train) // args.kepler_batch // 4))
        kp.set_entities(ents.values())  # embeds the unseen entities from their glosses
        rows.append(row(f"KEPLER({args.encoder})", split, evaluate_embedder(kp, test, triples),
                        time.perf_counter() - t0))
    by = {(r["model"].split("(")[0], r["split"]): r for r in rows}
    print(f"ratio MRR KEPLER/TransE transductive {by['KEPLER', 'transductive']['mrr'] / by['TransE', 'transductive']['mrr']:.3f}; "
          f"inductive {by['KEPLER', 'inductive']['mrr'] / by['TransE', 'inductive']['mrr']:.3f}")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"args": vars(args), "rows": rows}, fh, indent=2)
    if out:
        metrics = [benchmarks.metric(f"KEPLER({args.encoder}) MRR {split}", round(by["KEPLER", split]["mrr"], 4),
                                     f"TransE (dim {args.transe_dim}, {args.transe_epochs} epochs), same split, same run",
                                     round(by["TransE", split]["mrr"], 4),
                                     by["KEPLER", split]["mrr"] / by["TransE", split]["mrr"])
                   for split in ("transductive", "inductive")]
        setup = {"synsets": len(ents), "triples": len(triples),
                 "transductive": {"train": len(tr_train), "test": len(tr_test)},
                 "inductive": {"train": len(in_train), "test": len(in_test), "unseen_entities": len(unseen)}}
        benchmarks.write(out, benchmarks.record(
            __file__, metrics, load=load, machine_desc=benchmarks.machine(f"{args.threads} CPU thread(s)"),
            details={"args": vars(args), "setup": setup, "rows": rows}))


if __name__ == "__main__":
    main()
