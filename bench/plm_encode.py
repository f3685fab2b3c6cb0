"""Encoding throughput: kira's TextEncoder vs sentence-transformers ``encode``, same model, same texts.

Both run in this process on the same passages: by default the demo's own mix (WordNet synsets
verbalized exactly as ``kira kb add wordnet`` indexes them: every lemma, the gloss, the facts),
``--texts glosses`` for bare "lemma, lemma: gloss" lines. Prints passages/s for each, their ratio
(goal >= 2.0 on CPU) and the cosine between kira's bf16 output and sentence-transformers' fp32
output (goal >= 0.999), in two phases of one run: the machine as it is, then under
``stress-ng --cpu 1`` (the shared-box case: kira's threads follow the free cores through
``plm.device.ThreadGovernor``, sentence-transformers keeps torch's default).

    python bench/plm_encode.py --n 4000 --rounds 4 --out bench/regressions/
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kira import benchmarks  # noqa: E402


def demo_texts(n: int, seed: int = 0) -> list[str]:
    """The passages the demo indexes (KB-verbalized WordNet), a random sample of ``n``."""
    from kira.reader.generate import docs_from_wordnet

    return [d.text for d in docs_from_wordnet(max_docs=n, seed=seed)]


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


def interleaved(st, kira_enc, texts: list[str], rounds: int, batch_size: int) -> dict:
    """Rounds alternate who goes first, so machine load (this box is shared) hits both sides alike."""
    chunks = [texts[i::rounds] for i in range(max(1, rounds))]
    t_st = t_kira = 0.0
    refs, outs = [], []
    for i, chunk in enumerate(chunks):
        for who in (("st", "kira") if i % 2 == 0 else ("kira", "st")):
            t0 = time.perf_counter()
            if who == "st":
                refs.append(st.encode(chunk, batch_size=batch_size, convert_to_numpy=True))
                t_st += time.perf_counter() - t0
            else:
                outs.append(kira_enc.encode(chunk, batch_size=batch_size))
                t_kira += time.perf_counter() - t0
    ref, ours = np.concatenate(refs), np.concatenate(outs)
    ref = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    ours = ours / np.linalg.norm(ours, axis=1, keepdims=True)
    cos = (ref * ours).sum(1)
    return {"sentence_transformers_psg_per_s": round(len(texts) / t_st, 1),
            "kira_psg_per_s": round(len(texts) / t_kira, 1), "ratio": round(t_st / t_kira, 2),
            "kira_threads_at_end": torch.get_num_threads(),
            "cosine_mean": round(float(cos.mean()), 5), "cosine_min": round(float(cos.min()), 5)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--model", default="minilm-l6")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--texts", choices=["demo", "glosses"], default="demo")
    ap.add_argument("--stress", type=int, default=1,
                    help="second phase under stress-ng --cpu N (0: idle phase only)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=None,
                    help="also write the record (kira.benchmarks schema) here, e.g. bench/regressions/plm_encode.yaml")
    args = ap.parse_args()
    load = benchmarks.machine_load()
    try:
        out = benchmarks.out_path(args.out, __file__)
    except ValueError as e:
        ap.error(str(e))
    if args.stress and not shutil.which("stress-ng"):
        ap.error("--stress needs stress-ng (apt-get install stress-ng), or pass --stress 0")

    from sentence_transformers import SentenceTransformer

    from kira.plm import TextEncoder, zoo

    texts = demo_texts(args.n) if args.texts == "demo" else load_texts(args.n)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    st = SentenceTransformer(str(zoo.resolve(args.model).path), device=device)
    st.max_seq_length = 256
    kira_enc = TextEncoder(args.model, max_length=256, bf16=True)
    st.encode(texts[:64], batch_size=args.batch_size)  # warm both up
    kira_enc.encode(texts[:64], batch_size=args.batch_size)

    phases = {"idle": interleaved(st, kira_enc, texts, args.rounds, args.batch_size)}
    if args.stress:
        stress = subprocess.Popen(["stress-ng", "--cpu", str(args.stress), "--timeout", "3600s", "--quiet"])
        try:
            time.sleep(2)
            phases[f"stress-ng --cpu {args.stress}"] = interleaved(st, kira_enc, texts, args.rounds, args.batch_size)
        finally:
            stress.terminate()
            stress.wait()
    result = {"n": len(texts), "texts": args.texts, "device": device, "load_before": load, "phases": phases}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{len(texts)} passages ({args.texts}), {device}, load before: {load}")
        print(f"{'phase':22s} {'kira psg/s':>11s} {'s-t psg/s':>10s} {'ratio':>6s} {'cos min':>8s} {'threads':>7s}")
        for name, r in phases.items():
            print(f"{name:22s} {r['kira_psg_per_s']:11.1f} {r['sentence_transformers_psg_per_s']:10.1f} "
                  f"{r['ratio']:6.2f} {r['cosine_min']:8.5f} {r['kira_threads_at_end']:7d}")
        print("goal: ratio >= 2.0 in every phase -> "
              f"{'MET' if all(r['ratio'] >= 2.0 for r in phases.values()) else 'NOT MET'}; cosine_min >= 0.999 -> "
              f"{'MET' if all(r['cosine_min'] >= 0.999 for r in phases.values()) else 'NOT MET'}")
    if out:
        peer = "sentence-transformers encode (fp32, torch default threads), same model, texts and run"
        metrics = []
        for name, r in phases.items():
            metrics.append(benchmarks.metric(f"kira TextEncoder passages/s ({name})", r["kira_psg_per_s"], peer,
                                             r["sentence_transformers_psg_per_s"], r["ratio"], ">= 2.0"))
            metrics.append(benchmarks.metric(f"cosine min vs sentence-transformers ({name})", r["cosine_min"],
                                             goal=">= 0.999"))
        benchmarks.write(out, benchmarks.record(
            __file__, metrics, load=f"{load}; second phase under stress-ng --cpu {args.stress}" if args.stress else load,
            details=result, machine_desc=benchmarks.machine("kira's torch threads follow the free cores")))


if __name__ == "__main__":
    main()
