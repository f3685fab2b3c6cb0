"""Extractive reader training steps on CPU, one run: the model's own attention dropout (sdpa, kira's
default) against attention dropout 0 with eager attention (``TrainOptions.attention_dropout=0``).

Why: pretraining is most of the demo's readers minutes. Both rows run the same batches of
pretraining questions generated from WordNet (16 questions x 3 passages, 128 tokens, 2 frozen
layers, bf16 autocast) from the same initial weights; the figure is optimizer steps per second.

    KIRA_THREADS=2 python bench/reader_train_speed.py --steps 12 --out bench/regressions/
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch  # noqa: E402

from kira import benchmarks  # noqa: E402


def steps_per_second(attention_dropout: float | None, batches: list, warmup: int = 2) -> float:
    from kira.plm.device import autocast, set_threads
    from kira.reader.extractive import ExtractiveReader, extractive_loss
    from kira.reader.pretrain import PretrainRecipe
    from kira.reader.train import (
        _freeze_input_embeddings,
        _freeze_lower_layers,
        _optimizer,
        set_seed,
        speed_up_training,
    )

    recipe = PretrainRecipe()
    set_seed(0)
    reader = ExtractiveReader.from_base(recipe.base, device="cpu", max_length=recipe.max_length,
                                        title_in_passage=True)
    _freeze_input_embeddings(reader.model.qa)
    _freeze_lower_layers(reader.model.qa, recipe.freeze_layers)
    restore = speed_up_training(reader.model.qa, attention_dropout, None, reader.device)
    opt, _ = _optimizer(reader.model, recipe.lr, len(batches))
    reader.model.train()
    t0 = time.perf_counter()
    for i, batch in enumerate(batches):
        if i == warmup:
            t0 = time.perf_counter()
        set_threads()
        with autocast(reader.device, True):
            loss = extractive_loss(reader, batch).float()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    restore()
    return (len(batches) - warmup) / (time.perf_counter() - t0)


def main() -> None:
    from kira.reader.generate import docs_from_wordnet
    from kira.reader.pretrain import PretrainRecipe, pretrain_records
    from kira.reader.train import attach_passages, extractive_examples, make_batches

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    load = benchmarks.machine_load()
    out = benchmarks.out_path(args.out, __file__)
    recipe = PretrainRecipe(steps=args.steps + 2)
    records = pretrain_records(recipe, docs_from_wordnet(max_docs=2000, seed=recipe.seed))
    examples = extractive_examples(records, attach_passages(records, None, recipe.n_passages), recipe.n_passages)
    batches = make_batches(examples, recipe.batch_size, recipe.seed)[: args.steps + 2]
    default = steps_per_second(None, batches)
    no_dropout = steps_per_second(0.0, batches)
    print(f"{len(batches) - 2} steps of {recipe.batch_size} questions x {recipe.n_passages} passages, "
          f"{torch.get_num_threads()} threads, load before: {load}")
    print(f"attention dropout 0.1, sdpa (default): {default:.3f} steps/s")
    print(f"attention dropout 0, eager:            {no_dropout:.3f} steps/s ({no_dropout / default:.2f}x)")
    if out:
        metrics = [benchmarks.metric("extractive training steps/s, attention dropout 0 (eager)", round(no_dropout, 3),
                                     "attention dropout 0.1 (sdpa, default), same run", round(default, 3))]
        benchmarks.write(out, benchmarks.record(__file__, metrics, load=load,
                                                details={"steps": len(batches) - 2, "batch_size": recipe.batch_size,
                                                         "n_passages": recipe.n_passages}))


if __name__ == "__main__":
    main()
