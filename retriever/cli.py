"""``kira retriever …`` (search, train) and ``kira eval retrieval``. Heavy imports stay inside commands.

``--index DIR`` accepts a workspace (uses its ``indexes/current``), an ``indexes/`` directory or one
version directory; without it the workspace from ``--workspace`` / ``$KIRA_WORKSPACE`` is used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from kira.artifacts import role_dir
from kira.clikit import IndexOpt, WorkspaceOpt, run, workspace_for
from kira.errors import KiraError

app = typer.Typer(help="Search and train DPR retrievers.", no_args_is_help=True, pretty_exceptions_enable=False)

METHODS = ("bm25", "dense", "hybrid")


def _context(index: str | None, workspace: str | None):
    """(config, IndexVersion) for the CLI options; config from the workspace holding the index."""
    from kira.config import load_config
    from kira.retriever import resolve_version

    cfg = load_config(workspace_for(index, workspace))  # a version's config is its workspace's
    return cfg, resolve_version(index or cfg.indexes_dir)




@app.command()
def search(
    query: Annotated[str, typer.Argument(help="The query.")],
    index: IndexOpt = None,
    workspace: WorkspaceOpt = None,
    method: Annotated[str, typer.Option(help="bm25 | dense | hybrid")] = "hybrid",
    k: Annotated[int, typer.Option(help="Passages to return.")] = 10,
    fusion: Annotated[str | None, typer.Option(help="Hybrid fusion: rrf | linear (default from config).")] = None,
    alpha: Annotated[float | None, typer.Option(help="Linear fusion weight on BM25 (pyserini's alpha).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Search the index with BM25, dense (DPR) or hybrid retrieval."""

    def body():
        if method not in METHODS:
            raise KiraError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
        cfg, version = _context(index, workspace)
        if fusion:
            cfg.retriever.fusion = fusion
        if alpha is not None:
            cfg.retriever.alpha = alpha
        from kira.retriever import open_retrievers

        rets = open_retrievers(version, cfg)
        if method not in rets:
            raise KiraError(f"index version {version.name} has no dense vectors; use --method bm25")
        hits = rets[method].search(query, k)
        if as_json:
            print(json.dumps({"query": query, "method": method, "version": version.name,
                              "hits": [h.to_dict() for h in hits]}, default=str))
            return
        for r, h in enumerate(hits, start=1):
            text = h.text if len(h.text) <= 160 else h.text[:157] + "..."
            print(f"{r:3d}. {h.score:9.4f}  {h.id}  [{h.title}]  {text}")

    run(body)


@app.command()
def train(
    questions: Annotated[Path, typer.Option("--questions", help="JSONL: question, answers, positive_ctxs?")],
    index: IndexOpt = None,
    workspace: WorkspaceOpt = None,
    out: Annotated[Path | None, typer.Option(help="Output directory (default <workspace>/models/dpr).")] = None,
    base: Annotated[str, typer.Option(help="Starting encoder (zoo spec).")] = "minilm-l6",
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 1,
    batch_size: Annotated[int, typer.Option(help="Questions per batch (in-batch negatives).")] = 16,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 2e-5,
    shared: Annotated[bool, typer.Option("--shared/--separate",
                                         help="One encoder for questions and passages, or two.")] = False,
    bm25_k: Annotated[int, typer.Option(help="BM25 depth when mining positives/hard negatives.")] = 100,
    max_length: Annotated[int, typer.Option(help="Max tokens per question/passage.")] = 256,
    pooling: Annotated[str | None, typer.Option(help="cls | mean | max (default: the base encoder's).")] = None,
    question_only: Annotated[bool, typer.Option(
        "--question-only", help="Train only a question encoder against the index's own passage vectors "
                                "(no passage re-encoding, no index rebuild; hard negatives mined by dense "
                                "search); use it with [index] query_encoder.")] = False,
    steps: Annotated[int, typer.Option(help="--question-only: optimizer steps (the budget).")] = 300,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train DPR encoders (in-batch + BM25 hard negatives) from question/answer pairs."""

    def body():
        cfg, version = _context(index, workspace)
        from kira.retriever.bm25 import BM25Retriever
        from kira.retriever.dpr import mine_examples, train_dpr
        from kira.retriever.evaluate import load_questions

        rows = load_questions(questions)
        if question_only:
            return _train_question_only(cfg, version, rows, out, steps, batch_size, lr, bm25_k, as_json)
        examples, rep = mine_examples(rows, BM25Retriever(version), k=bm25_k)
        dest = Path(out or role_dir(cfg.models_dir, "dpr")).resolve()  # the manifest records it; keep it absolute

        def log(m: str) -> None:
            print(m, file=sys.stderr)

        log(f"{rep.n_examples}/{rep.n_rows} questions usable ({rep.given_positive} given positives, "
            f"{rep.mined_positive} mined, {rep.no_positive} without a positive in BM25 top-{bm25_k})")
        res = train_dpr(examples, dest, base=base, shared=shared, epochs=epochs, batch_size=batch_size,
                        lr=lr, device=cfg.device, max_length=max_length, pooling=pooling, log=log)
        ws = version.path.parent.parent
        rebuild = f"kira index build --index {ws} --encoder {res.passage_dir}"
        if as_json:
            print(json.dumps({"out": str(res.out), "question_encoder": str(res.question_dir),
                              "passage_encoder": str(res.passage_dir), "shared": shared,
                              "n_examples": res.n_examples, "mining": rep.__dict__,
                              "epoch_losses": res.epoch_losses, "loss_before": res.loss_before,
                              "loss_after": res.loss_after, "rebuild": rebuild}))
            return
        print(f"saved {'shared encoder' if shared else 'question + passage encoders'} to {res.out}")
        print(f"now re-encode the index with the new passage encoder:\n  {rebuild}")

    run(body)


def _train_question_only(cfg, version, rows, out, steps: int, batch_size: int, lr: float, k: int,
                         as_json: bool) -> None:
    from kira.retriever.dense import DenseRetriever, manifest_encoder, resolve_query_encoder_spec
    from kira.retriever.dpr import mine_examples, train_question_encoder

    dense = DenseRetriever(version, device=cfg.device, config_query_encoder=cfg.index.query_encoder)
    try:
        examples, rep = mine_examples(rows, dense, k=k)
        enc = manifest_encoder(dense.manifest)
        dest = Path(out or role_dir(cfg.models_dir, "dpr-question")).resolve()
        unit = bool(enc.get("normalize", True))  # the vectors exactly as search scores them
        # starts from the question encoder search uses today (the index's own encoder when shared)
        base = resolve_query_encoder_spec(dense.manifest, config_spec=cfg.index.query_encoder)[0]
        res = train_question_encoder(examples, lambda ids: dense.passage_vectors(ids, unit=unit), dest, base=base,
                                     steps=steps, batch_size=batch_size, lr=lr, device=cfg.device,
                                     pooling=enc.get("pooling"), log=lambda m: print(m, file=sys.stderr))
    finally:
        dense.close()
    use = f'[index]\nquery_encoder = "{dest}"'
    if as_json:
        print(json.dumps({"out": str(dest), "question_encoder": str(dest), "n_examples": res.n_examples,
                          "mining": rep.__dict__, "loss_before": res.loss_before, "loss_after": res.loss_after,
                          "use": use}))
        return
    print(f"saved a question encoder for index {version.name} to {dest}; to use it, add to kira.toml:\n{use}")


def eval_retrieval(
    questions: Annotated[Path, typer.Option("--questions", help="JSONL rows {question, answers}.")],
    index: IndexOpt = None,
    workspace: WorkspaceOpt = None,
    k: Annotated[str, typer.Option("--k", help="Comma-separated cut-offs.")] = "1,5,20,100",
    methods: Annotated[str, typer.Option(help="Comma-separated: bm25,dense,hybrid.")] = "bm25,dense,hybrid",
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """DPR top-k answer accuracy for BM25, dense and hybrid side by side."""

    def body():
        from kira.retriever.evaluate import evaluate_retrieval, load_questions, parse_ks

        ks = parse_ks(k)
        wanted = [m.strip() for m in methods.split(",") if m.strip()]
        bad = [m for m in wanted if m not in METHODS]
        if bad:
            raise KiraError(f"--methods: unknown {bad}; choose from {', '.join(METHODS)}")
        rows = load_questions(questions)[:limit]
        cfg, version = _context(index, workspace)
        from kira.retriever import open_retrievers

        rets = open_retrievers(version, cfg)
        missing = [m for m in wanted if m not in rets]
        if missing:
            print(f"kira: note: index version {version.name} has no dense vectors; skipping {missing}",
                  file=sys.stderr)
        res = evaluate_retrieval({m: rets[m] for m in wanted if m in rets}, rows, ks)
        if as_json:
            print(json.dumps(res))
            return
        names = [m for m in wanted if m in res]
        print(f"n = {res['n']}   index {version.name}")
        print("      " + "".join(f"{m:>10}" for m in names))
        for kk in ks:
            print(f"top{kk:<3d}" + "".join(f"{res[m][f'top{kk}']:>10.4f}" for m in names))

    run(body)


app.command("eval")(eval_retrieval)  # also `python -m kira.retriever eval …`

if __name__ == "__main__":
    app()
