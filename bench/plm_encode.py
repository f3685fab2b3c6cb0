"""Encoding throughput: kira's TextEncoder vs sentence-transformers ``encode``, same model, same texts.

Both run in this process on the same passages (WordNet glosses when available, else synthetic
sentences). Prints passages/s for each, their ratio (goal >= 2.0 on CPU) and the cosine between
kira's bf16 output and sentence-transformers' fp32 output (goal >= 0.999).

    python bench/plm_encode.py --n 10000
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kira import benchmarks  # noqa: E402


def load_texts(n: int, seed: int = 0) -> list[str]:
    """Real text: WordNet synset passages ("lemma, lemma: gloss"), else synthetic sentences."""
    path = "/usr/share/wordnet/data.noun"
    texts: list[str] = []
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("  ") or "|" not in line:
                    continue
                head, gloss = line.split("|", 1)
                parts = head.split()
                w_cnt = int(parts[3], 16)
                lemmas = [parts[4 + 2 * i].replace("_", " ") for i in range(w_cnt)]
                texts.append(f"{', '.join(lemmas)}: {gloss.strip()}")
                if len(texts) >= n:
                    break
    rng = random.Random(seed)
    words = ["the", "of", "a", "river", "city", "capital", "music", "science", "plant", "animal", "ancient", "modern", "large", "small"]
    while len(texts) < n:
        texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(8, 80))))
    rng.shuffle(texts)
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=None,
                    help="also write the record (kira.benchmarks schema) here, e.g. bench/regressions/plm_encode.yaml")
    args = ap.parse_args()
    load = benchmarks.machine_load()
    try:
        out = benchmarks.out_path(args.out, __file__)
    except ValueError as e:
        ap.error(str(e))

    from sentence_transformers import SentenceTransformer

    from kira.plm import TextEncoder, zoo

    texts = load_texts(args.n)
    path = str(zoo.resolve(args.model).path)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    st = SentenceTransformer(path, device=device)
    st.max_seq_length = 256
    kira_enc = TextEncoder(args.model, max_length=256, bf16=True)

    # warm both up on the same small batch
    st.encode(texts[:64], batch_size=args.batch_size)
    kira_enc.encode(texts[:64], batch_size=args.batch_size)

    # Interleave rounds so that machine load (this box is shared and noisy) hits both sides alike.
    rounds = max(1, args.rounds)
    chunks = [texts[i::rounds] for i in range(rounds)]
    t_st = t_kira = 0.0
    refs, outs = [], []
    for i, chunk in enumerate(chunks):
        order = [("st", chunk), ("kira", chunk)] if i % 2 == 0 else [("kira", chunk), ("st", chunk)]
        for who, c in order:
            t0 = time.perf_counter()
            if who == "st":
                refs.append(st.encode(c, batch_size=args.batch_size, convert_to_numpy=True))
                t_st += time.perf_counter() - t0
            else:
                outs.append(kira_enc.encode(c, batch_size=args.batch_size))
                t_kira += time.perf_counter() - t0
    ref, ours = np.concatenate(refs), np.concatenate(outs)

    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    ours_n = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    cos = (ref * ours_n).sum(1)
    result = {
        "n": len(texts), "device": device, "threads": torch.get_num_threads(),
        "sentence_transformers_psg_per_s": round(len(texts) / t_st, 1),
        "kira_psg_per_s": round(len(texts) / t_kira, 1),
        "ratio": round(t_st / t_kira, 2),
        "cosine_mean": round(float(cos.mean()), 5), "cosine_min": round(float(cos.min()), 5),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:34s} {v}")
        print(f"goal: ratio >= 2.0 -> {'MET' if result['ratio'] >= 2.0 else 'NOT MET'}; "
              f"cosine_min >= 0.999 -> {'MET' if result['cosine_min'] >= 0.999 else 'NOT MET'}")
    if out:
        peer = "sentence-transformers encode (fp32), same model, same texts, same run"
        metrics = [
            benchmarks.metric("kira TextEncoder passages/s", result["kira_psg_per_s"], peer,
                              result["sentence_transformers_psg_per_s"], result["ratio"], ">= 2.0"),
            benchmarks.metric("cosine min (kira vs sentence-transformers embeddings)", result["cosine_min"],
                              goal=">= 0.999"),
        ]
        benchmarks.write(out, benchmarks.record(__file__, metrics, load=load, details=result,
                                                machine_desc=benchmarks.machine(f"{result['threads']} torch threads")))


if __name__ == "__main__":
    main()
