"""Reader pretraining, once per user: a QA-tuned extractive reader cached under ``~/.cache/kira``.

Reading skills (find the entity a gloss describes, the year in a life span, the object of a
relation, the exception a docstring names) do not depend on the workspace, so they are learned
once, from questions ``kira.reader.generate`` writes about WordNet (synset glosses and verbalized
relations, always available offline), and cached as an artifact keyed by the base model, the
generator version and the recipe. A workspace's default reader then starts from it and only
fine-tunes briefly on questions about its own passages (``kira.reader.defaults``).

Budgets are optimizer *steps*, sized for an idle 2-core CPU (bf16 autocast, length-bucketed
batches, frozen embeddings and lower layers); ``max_seconds`` only stops a far-too-slow run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kira.reader.generate import GENERATOR_VERSION


@dataclass
class PretrainRecipe:
    base: str = "minilm-l6"
    # steps buy quality: on the blind natural validation set (bench/data/natural-val-wordnet.jsonl, k=10,
    # before any workspace fine-tuning) 300 steps gave EM 0.679, 900 steps 0.796. 700 is what fits the
    # demo's readers budget (30 min on an idle 2-core box, with the workspace fine-tune and calibration)
    steps: int = 700
    batch_size: int = 16
    # 1 positive + 2 hard negatives per question; one negative at 1,050 steps (the same minutes) gave natural
    # val 0.799 against 0.808 for 700 steps of three passages (pretrained readers alone, KB types on)
    n_passages: int = 3
    max_length: int = 128
    lr: float = 1.5e-4
    freeze_layers: int = 2
    # training-time only, None: the model's own (see TrainOptions.attention_dropout: 0 is 30% faster and
    # was 0.02 lower on the natural validation set at 700 steps; 1,300 steps at 0 matched 700 with it)
    attention_dropout: float | None = None
    per_passage: int = 4
    name_share: float = 0.5  # description -> name questions; the rest: relations, numbers, dates, entities
    max_docs: int = 40_000
    seed: int = 0

    def key(self) -> str:
        # options left at None are not part of the key, so adding one keeps existing caches valid
        d = {k: v for k, v in asdict(self).items() if v is not None} | {"generator": GENERATOR_VERSION}
        h = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]
        safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in self.base)[-40:]
        return f"extractive-{safe}-{GENERATOR_VERSION}-{h}"


def cache_root() -> Path:
    """``$KIRA_CACHE`` or ``~/.cache/kira`` (``$XDG_CACHE_HOME/kira``)."""
    env = os.environ.get("KIRA_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kira"


def pretrained_dir(recipe: PretrainRecipe | None = None) -> Path:
    return cache_root() / "readers" / (recipe or PretrainRecipe()).key()


def pretrain_records(recipe: PretrainRecipe, docs=None) -> list[dict[str, Any]]:
    """Generated questions (with their passages as contexts) for pretraining."""
    from kira.reader.generate import contexts_of, docs_from_wordnet, generate

    docs = docs if docs is not None else docs_from_wordnet(max_docs=recipe.max_docs, seed=recipe.seed)
    n_needed = recipe.steps * recipe.batch_size * 12 // 10 + 500
    recs = generate(docs, per_passage=recipe.per_passage, name_share=recipe.name_share, seed=recipe.seed,
                    negatives=recipe.n_passages - 1, limit=n_needed * 10 // 9)
    return [dict(r, contexts=contexts_of(r)) for r in recs]


def ensure_pretrained(recipe: PretrainRecipe | None = None, force: bool = False, docs=None,
                      max_seconds: float | None = None, log: Callable[[str], None] | None = print,
                      out: str | Path | None = None) -> Path:
    """The cached pretrained extractive reader (trained now when missing). Written to a temporary
    directory and renamed, so an interrupted run never leaves a half-written cache entry."""
    from kira.reader.questions import write_questions
    from kira.reader.train import TrainOptions, train_reader

    recipe = recipe or PretrainRecipe()
    final = Path(out) if out else pretrained_dir(recipe)
    if (final / "kira.json").exists() and not force:
        return final
    t0 = time.perf_counter()
    if log:
        log(f"pretraining the extractive reader ({recipe.base}, {recipe.steps} steps of {recipe.batch_size} "
            f"questions) → {final}")
    records = pretrain_records(recipe, docs)
    tmp = final.with_name(final.name + f".partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    final.parent.mkdir(parents=True, exist_ok=True)
    write_questions(records, final.parent / f"{final.name}.questions.jsonl")
    opts = TrainOptions(kind="extractive", base=recipe.base, batch_size=recipe.batch_size,
                        n_passages=recipe.n_passages, max_length=recipe.max_length, lr=recipe.lr,
                        max_steps=recipe.steps, max_seconds=max_seconds, freeze_layers=recipe.freeze_layers,
                        attention_dropout=recipe.attention_dropout,
                        seed=recipe.seed, max_calibrate=300, calibrate_fraction=0.05, log=log)
    res = train_reader(records, opts, out=tmp, extra={"pretrain": asdict(recipe) | {"generator": GENERATOR_VERSION},
                                                       "questions": str(final.parent / f"{final.name}.questions.jsonl")})
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    if log:
        log(f"pretrained reader: {res.steps} steps, {res.n_train} questions in {(time.perf_counter() - t0) / 60:.1f} min "
            f"→ {final}")
    return final
