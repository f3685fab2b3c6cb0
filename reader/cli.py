"""``kira reader …`` (train, generate-questions, defaults) and ``kira eval qa``.

Module-level imports stay light: models and retrievers load inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from kira.artifacts import role_dir
from kira.clikit import IndexOpt, WorkspaceOpt, workspace_for

app = typer.Typer(help="Train and inspect readers.", no_args_is_help=True, pretty_exceptions_enable=False)

def _setup(index: str | None, workspace: str | None):
    from kira.config import load_config
    from kira.retriever import resolve_version

    cfg = load_config(workspace_for(index, workspace))
    version = resolve_version(index) if index else resolve_version(cfg.indexes_dir)
    return cfg, version


def _echo_json(obj) -> None:
    print(json.dumps(obj, default=str))


@app.command("train")
def train(
    questions: Annotated[str, typer.Option(help="JSONL of {question, answers[, contexts]}.")],
    index: IndexOpt = None,
    workspace: WorkspaceOpt = None,
    kind: Annotated[str, typer.Option(help="extractive | fid")] = "extractive",
    base: Annotated[str | None, typer.Option(help="Base model spec (default minilm-l6 / bert2bert:minilm-l6).")] = None,
    out: Annotated[str | None, typer.Option(help="Artifact directory (default models/reader-<kind>).")] = None,
    method: Annotated[str, typer.Option(help="Retriever for passages: bm25 | dense | hybrid.")] = "bm25",
    k: Annotated[int, typer.Option(help="Passages per question (extractive: 1 positive + k-1 negatives).")] = 4,
    epochs: int = 1,
    batch_size: int = 4,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default 5e-5 extractive, 2e-4 FiD).")] = None,
    max_length: Annotated[int, typer.Option(help="Tokens per passage window.")] = 192,
    max_questions: Annotated[int | None, typer.Option(help="Train on at most this many questions.")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Stop training after this wall time.")] = None,
    calibrate_seconds: Annotated[float | None, typer.Option(help="Cap on no-answer calibration time.")] = None,
    freeze_encoder: Annotated[bool, typer.Option(
        "--freeze-encoder", help="FiD: keep the encoder fixed, encode each question's passages once and "
                                 "train the decoder for many cheap epochs (CPU budgets).")] = False,
    copy_head: Annotated[bool, typer.Option(
        "--copy-head", help="FiD: pointer-generator output that copies answer tokens from the fused passages "
                            "(generalises to unseen entities without a pretrained seq2seq).")] = False,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps (the budget).")] = None,
    freeze_layers: Annotated[int, typer.Option(help="Extractive: keep the lowest N layers fixed.")] = 0,
    calibrate_questions: Annotated[str | None, typer.Option(
        help="JSONL of held-out (generated) questions to calibrate abstention on. With --index or "
             "--workspace they are read as users' questions are (the retriever's top --calibrate-k), "
             "else over their own contexts.")] = None,
    calibrate_k: Annotated[int | None, typer.Option(help="Passages per calibration question "
                                                          "(default: the workspace's reader k).")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Train a reader: retrieved passages with distant supervision, or the records' given contexts."""
    from kira.reader.questions import read_questions
    from kira.reader.train import TrainOptions, train_reader

    records = read_questions(questions)
    needs_retrieval = any(not r.get("contexts") for r in records)
    retriever, cfg, cal_retriever = None, None, None
    if needs_retrieval or index or (calibrate_questions and workspace):
        from kira.retriever import open_retrievers

        cfg, version = _setup(index, workspace)
        rets = open_retrievers(version, cfg)
        retriever = rets.get(method) or rets["bm25"]
        if calibrate_questions:  # the conditions of use: the pipeline's default retrieval
            cal_retriever = rets.get(cfg.retriever.default_method) or retriever
    if out is None:
        if cfg is None:
            from kira.config import load_config

            cfg = load_config(workspace)
        out = str(role_dir(cfg.models_dir, f"reader-{kind}"))
    opts = TrainOptions(kind=kind, base=base, epochs=epochs, lr=lr, batch_size=batch_size, n_passages=k,
                        max_length=max_length, max_questions=max_questions, max_seconds=max_seconds,
                        calibrate_seconds=calibrate_seconds, freeze_encoder=freeze_encoder, copy_head=copy_head,
                        max_steps=max_steps, freeze_layers=freeze_layers,
                        calibrate_k=calibrate_k or (cfg.reader.k if cfg else 10),
                        log=(lambda m: typer.echo(m, err=True)))
    cal = read_questions(calibrate_questions) if calibrate_questions else None
    res = train_reader(records, opts, retriever=retriever, out=out, extra={"questions": str(questions)},
                       calibrate_records=cal, calibrate_retriever=cal_retriever)
    summary = res.summary()
    if as_json:
        _echo_json(summary)
    else:
        typer.echo(f"saved {kind} reader to {res.path}: {res.n_train} questions, {res.steps} steps, "
                   f"loss {summary['loss_first10']:.3f} → {summary['loss_last10']:.3f}, {res.seconds:.0f}s")


@app.command("calibrate")
def calibrate_cmd(
    reader: Annotated[str, typer.Option(help="Reader artifact directory (extractive or FiD) to calibrate.")],
    questions: Annotated[str, typer.Option(help="JSONL of held-out {question, answers}, e.g. the workspace's "
                                                "models/reader-data/heldout-generated.jsonl; never a dev set.")],
    index: IndexOpt = None,
    workspace: WorkspaceOpt = None,
    k: Annotated[int | None, typer.Option(help="Passages read per question (default: the workspace's reader k).")] = None,
    method: Annotated[str | None, typer.Option(help="bm25 | dense | hybrid (default: the workspace's).")] = None,
    max_questions: int = 400,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Refit a reader's abstention on held-out questions read as ``kira ask`` reads them (retrieved
    top-k, in order) and store it in the artifact: after an index change or for an older reader."""
    from kira.artifacts import loader_for, read_config
    from kira.reader.calibration import save_calibration
    from kira.reader.questions import read_questions
    from kira.reader.train import calibrate_in_use
    from kira.retriever import open_retrievers

    cfg, version = _setup(index, workspace)
    method = method or cfg.retriever.default_method
    rets = open_retrievers(version, cfg)
    if method not in rets:
        from kira.errors import KiraError

        raise KiraError(f"retrieval method {method!r} is not available in index {version.name} "
                        f"(available: {', '.join(sorted(rets))})")
    model = loader_for(read_config(reader)["type"])(reader, device=cfg.device, bf16=cfg.bf16)
    old = model.threshold
    records = read_questions(questions)[:max_questions]
    k = k or cfg.reader.k
    cal = calibrate_in_use(model, records, rets[method], k)
    save_calibration(reader, cal, {"questions": str(questions), "n": len(records), "k": k, "method": method,
                                   "index_version": version.name})
    out = {"reader": reader, "old_threshold": old, "calibration": cal.to_dict() if cal else None}
    if as_json:
        _echo_json(out)
    elif cal is None:
        typer.echo(f"{reader}: nothing to separate on {len(records)} questions (all right or all wrong); "
                   f"the reader now always answers")
    else:
        typer.echo(f"{reader}: abstains below {cal.threshold:.3f} (was {old if old is None else round(old, 3)}); "
                   f"on {cal.n} held-out questions at k={k} ({method}) it answers {cal.coverage:.0%}, "
                   f"{cal.accuracy_answered:.0%} of those right")


@app.command("generate-questions")
def generate_questions(
    out: Annotated[str, typer.Option(help="Output JSONL.")],
    kb: Annotated[str | None, typer.Option(help="KB name (default: every KB in the store).")] = None,
    index: IndexOpt = None,
    workspace: WorkspaceOpt = None,
    templates: Annotated[str | None, typer.Option(help="YAML/JSON: relation -> [phrasings] with {subject}.")] = None,
    heldout: Annotated[float, typer.Option(help="Fraction of subject entities held out.")] = 0.1,
    limit: Annotated[int | None, typer.Option(help="At most this many questions per source.")] = None,
    text: Annotated[bool, typer.Option(help="Also cloze questions from plain text passages.")] = False,
    seed: int = 0,
) -> None:
    """Synthetic {question, answers} from KB triples (templated) and text passages (cloze)."""
    from kira.config import load_config
    from kira.reader.questions import (
        load_templates,
        questions_from_kb,
        questions_from_passages,
        write_questions,
    )
    from kira.workspace import acquire_store

    cfg = load_config(workspace_for(index, workspace))
    store = acquire_store(cfg)
    try:
        tpl = load_templates(templates)
        kbs = [kb] if kb else store.list_kbs()
        if kb and kb not in store.list_kbs():
            from kira.errors import KiraError

            raise KiraError(f"no KB named {kb!r} in {cfg.store_path} (have: {', '.join(store.list_kbs()) or 'none'})")
        records = []
        for name in kbs:
            records.extend(questions_from_kb(store, name, tpl, heldout=heldout, limit=limit, seed=seed))
        if text:
            records.extend(questions_from_passages(store, heldout=heldout, limit=limit, seed=seed))
    finally:
        store.close()
    n = write_questions(records, out)
    n_held = sum(r["split"] == "heldout" for r in records)
    typer.echo(f"wrote {n} synthetic questions ({n_held} held out by subject) to {out}")


@app.command("generate")
def generate_cmd(
    out: Annotated[str, typer.Option(help="Output JSONL of generated {question, answers, contexts, split, …}.")],
    jsonl: Annotated[str | None, typer.Option(help="Generate from this JSONL corpus ({id, title, text}).")] = None,
    wordnet: Annotated[str | None, typer.Option(help="Generate from WordNet data files in this directory.")] = None,
    index: IndexOpt = None,
    workspace: WorkspaceOpt = None,
    per_passage: Annotated[int, typer.Option(help="Questions per passage at most.")] = 3,
    max_docs: Annotated[int | None, typer.Option(help="Sample at most this many passages.")] = None,
    limit: Annotated[int | None, typer.Option(help="Stop after this many questions.")] = None,
    heldout: Annotated[float, typer.Option(help="Fraction of passages / answer entities held out.")] = 0.1,
    negatives: Annotated[int, typer.Option(help="Hard-negative passages per question.")] = 2,
    seed: int = 0,
    show: Annotated[int, typer.Option(help="Print this many sample questions.")] = 0,
) -> None:
    """Unsupervised QA data from any text (kira.reader.generate): description -> name, typed span
    questions, KB relations, code facts; from a JSONL corpus, WordNet, or the workspace's store."""
    from kira.reader import generate as g
    from kira.reader.questions import write_questions

    if jsonl:
        docs = g.docs_from_jsonl(jsonl, max_docs=max_docs, seed=seed)
    elif wordnet:
        docs = g.docs_from_wordnet(wordnet, max_docs=max_docs, seed=seed)
    else:
        from kira.config import load_config
        from kira.workspace import acquire_store

        cfg = load_config(workspace_for(index, workspace))
        store = acquire_store(cfg)
        try:
            docs = g.docs_from_store(store, max_docs=max_docs, seed=seed)
        finally:
            store.close()
    recs = g.generate(docs, per_passage=per_passage, heldout=heldout, negatives=negatives, seed=seed, limit=limit)
    write_questions([dict(r, contexts=g.contexts_of(r)) for r in recs], out)
    for line in g.sample_questions(recs, show, seed):
        typer.echo(line)
    typer.echo(json.dumps(g.iter_records_stats(recs) | {"passages": len(docs), "out": out}))


@app.command("pretrain")
def pretrain_cmd(
    steps: Annotated[int | None, typer.Option(help="Optimizer steps (default: the recipe's).")] = None,
    base: Annotated[str | None, typer.Option(help="Base model spec (default minilm-l6).")] = None,
    out: Annotated[str | None, typer.Option(help="Artifact directory (default: the per-user cache).")] = None,
    max_seconds: Annotated[float | None, typer.Option(help="Safety cap on wall time.")] = None,
    n_passages: Annotated[int | None, typer.Option(help="Passages per question: 1 positive + hard negatives.")] = None,
    freeze_layers: Annotated[int | None, typer.Option(help="Lowest encoder layers kept fixed.")] = None,
    attention_dropout: Annotated[float | None, typer.Option(
        help="Training-time attention dropout (0: ~30% faster on CPU; default: the model's own).")] = None,
    force: bool = False,
) -> None:
    """Pretrain the extractive reader once on WordNet-generated questions; cached in ~/.cache/kira
    (keyed by base model, generator version and recipe) for every later workspace."""
    from dataclasses import replace

    from kira.reader.pretrain import PretrainRecipe, ensure_pretrained

    recipe = PretrainRecipe()
    if steps:
        recipe = replace(recipe, steps=steps)
    if base:
        recipe = replace(recipe, base=base)
    if n_passages:
        recipe = replace(recipe, n_passages=n_passages)
    if freeze_layers is not None:
        recipe = replace(recipe, freeze_layers=freeze_layers)
    if attention_dropout is not None:
        recipe = replace(recipe, attention_dropout=attention_dropout)
    path = ensure_pretrained(recipe, force=force, out=out, max_seconds=max_seconds,
                             log=lambda m: typer.echo(m, err=True))
    _echo_json({"path": str(path), "key": recipe.key()})


@app.command("defaults")
def defaults(
    workspace: WorkspaceOpt = None,
    kb: Annotated[str | None, typer.Option(help="KB to generate training questions from.")] = None,
    n_questions: int = 3000,
    extractive_seconds: float = 270,
    fid_seconds: float = 330,
    force: bool = False,
) -> None:
    """Train (once) the workspace's default extractive and FiD readers; cached afterwards."""
    from kira.config import load_config
    from kira.reader.defaults import ensure_default_readers
    from kira.workspace import acquire_store

    cfg = load_config(workspace)
    store = acquire_store(cfg)
    try:
        info = ensure_default_readers(cfg, store, kb=kb, n_questions=n_questions,
                                      extractive_seconds=extractive_seconds, fid_seconds=fid_seconds, force=force,
                                      log=lambda m: typer.echo(m, err=True))
    finally:
        store.close()
    _echo_json(info)


def _reader_kind(spec: str) -> str:
    from kira.plm import zoo

    r = zoo.resolve(spec)
    t = zoo.artifact_config(r.path).get("type", "") if r.path else ""
    if t.startswith("fid") or r.kind == "bert2bert" or spec in ("tiny-t5", "tiny-bart"):
        return "fid"
    if t.startswith("extractive"):
        return "extractive"
    if r.path is not None and (r.path / "config.json").exists():
        cfg = json.loads((r.path / "config.json").read_text())
        if cfg.get("is_encoder_decoder"):
            return "fid"
    return "extractive"


def eval_qa(
    questions: Annotated[str, typer.Option(help="JSONL of {question, answers}.")],
    index: IndexOpt = None,
    workspace: WorkspaceOpt = None,
    reader: Annotated[list[str] | None, typer.Option(
        help="Reader spec (artifact dir or zoo spec); repeat for both kinds. Default: the workspace's readers.")] = None,
    k: Annotated[int, typer.Option(help="Passages retrieved and read per question.")] = 20,
    method: Annotated[str | None, typer.Option(help="bm25 | dense | hybrid (default from config).")] = None,
    split: Annotated[str | None, typer.Option(
        help="Only records with this split (default: 'heldout' when the file has any, else all).")] = None,
    limit: Annotated[int | None, typer.Option(help="Evaluate the first N questions.")] = None,
    graph: Annotated[bool, typer.Option(
        "--graph", help="Also fuse graph expansion (KB fact paths) into retrieval and report the gain "
                        "over text retrieval alone, measured in the same run.")] = False,
    graph_weight: Annotated[float, typer.Option(help="RRF weight of the graph list against text.")] = 1.0,
    graph_encoder: Annotated[str | None, typer.Option(
        help="Zoo encoder scoring graph fact paths against the question (default: the index's encoder); "
             "'none' = token overlap (fast on CPU).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    predictions: Annotated[str | None, typer.Option(
        help="Write one JSONL row per question and reader (answer, score, correct, gold's evidence rank).")] = None,
    kb_types: Annotated[bool | None, typer.Option(
        "--kb-types/--no-kb-types", help="Weigh extractive answers by the KBs' answer types, as `kira ask` "
                                         "does (default: reader.kb_answer_types).")] = None,
) -> None:
    """QA EM / F1 for the extractive and FiD readers side by side, retrieval top-k and baselines.

    With ``--graph`` the top-level figures are text + graph expansion, and ``text_only`` holds the
    same readers over text retrieval alone, with ``graph_gain`` the differences (multi-hop sets)."""
    from kira.pipeline import default_reader_dir
    from kira.reader.evaluate import evaluate_qa
    from kira.reader.extractive import ExtractiveReader
    from kira.reader.fid import FiDReader
    from kira.reader.questions import read_questions
    from kira.retriever import open_retrievers

    cfg, version = _setup(index, workspace)
    records = read_questions(questions)
    if split is None and any(r.get("split") == "heldout" for r in records):
        split = "heldout"
    if split is not None:
        records = [r for r in records if r.get("split", "train") == split]
    if limit:
        records = records[:limit]
    specs: dict[str, str | None] = {}
    if reader:
        for s in reader:
            specs[_reader_kind(s)] = s
    else:
        for kind in ("extractive", "fid"):
            spec = getattr(cfg.reader, kind) or default_reader_dir(cfg, kind)
            specs[kind] = str(spec) if Path(str(spec)).exists() else None
    loaders = {"extractive": ExtractiveReader, "fid": FiDReader}
    readers = {kind: (loaders[kind].load(specs[kind], device=cfg.device, bf16=cfg.bf16) if specs.get(kind) else None)
               for kind in ("extractive", "fid")}
    if readers["extractive"] is not None and (cfg.reader.kb_answer_types if kb_types is None else kb_types):
        from kira.kb.answer_types import AnswerTypes
        from kira.workspace import answering_store

        store = answering_store(cfg, version)
        readers["extractive"].answer_types = AnswerTypes.from_store(store) if store is not None else None
    rets = open_retrievers(version, cfg)
    method = method or cfg.retriever.default_method
    retriever = rets.get(method) or rets["bm25"]
    text_only = None
    if graph:
        from kira.graph.expansion import GraphExpansionRetriever, TextPlusGraphRetriever
        from kira.workspace import answering_store

        text_only = evaluate_qa(records, retriever, readers, k=k)
        expansion = GraphExpansionRetriever.from_config(
            cfg, answering_store(cfg, version),
            **({} if graph_encoder is None else {"encoder": None if graph_encoder == "none" else graph_encoder}))
        retriever = TextPlusGraphRetriever(retriever, expansion, graph_weight=graph_weight)
    rows: list[dict] | None = [] if predictions else None
    result = evaluate_qa(records, retriever, readers, k=k, predictions=rows)
    if predictions and rows is not None:
        from kira.jsonl import write_jsonl

        write_jsonl(predictions, rows)
    if text_only is not None:
        result["text_only"] = {key: text_only[key] for key in ("extractive", "fid", "retrieval", "baselines")}
        result["graph_gain"] = graph_gain(result, text_only)
    result.update({"kb_answer_types": readers["extractive"] is not None
                   and readers["extractive"].answer_types is not None,
                   "method": getattr(retriever, "name", method), "index_version": version.name,
                   "split": split, "readers": specs,
                   "synthetic": any(r.get("synthetic") for r in records)})
    if as_json:
        _echo_json(result)
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"QA on {result['n']} questions ({questions}, split={split}, k={k}, {result['method']})")
    t.add_column("system")
    t.add_column("EM", justify="right")
    t.add_column("F1", justify="right")
    for name in ("extractive", "fid"):
        r = result[name]
        t.add_row(name, *(["—", "—"] if r is None else [f"{r['em']:.3f}", f"{r['f1']:.3f}"]))
    for name, r in result["baselines"].items():
        t.add_row(f"baseline: {name}", f"{r['em']:.3f}", f"{r['f1']:.3f}")
    Console().print(t)
    for name in ("extractive", "fid"):
        r = result[name]
        if r and r.get("coverage_accuracy"):
            typer.echo(f"{name} coverage–accuracy: " + ", ".join(
                f"{p['coverage']:.0%}→{p['accuracy']:.3f}" for p in r["coverage_accuracy"]))
        if r and r.get("abstention"):
            a = r["abstention"]
            typer.echo(f"{name} calibrated abstention: answers {a['coverage']:.0%}, "
                       f"accuracy when answering {a['accuracy_answered']:.3f}")
    for name in ("extractive", "fid"):
        r = result[name]
        if r and r.get("by_kind"):
            typer.echo(f"{name} EM by kind: " + ", ".join(f"{kd} {v['em']:.2f} ({v['n']})"
                                                          for kd, v in r["by_kind"].items()))
    typer.echo("retrieval: " + ", ".join(f"{key} {v:.3f}" for key, v in result["retrieval"].items()))
    if text_only is not None:
        typer.echo("gain of text + graph over text alone: " + json.dumps(result["graph_gain"]))


def graph_gain(with_graph: dict, text_only: dict) -> dict[str, float]:
    """Differences (text + graph minus text alone) of reader EM/F1 and retrieval top-k."""
    gain: dict[str, float] = {}
    for name in ("extractive", "fid"):
        if with_graph.get(name) and text_only.get(name):
            for m in ("em", "f1"):
                gain[f"{name}_{m}"] = round(with_graph[name][m] - text_only[name][m], 4)
    for key, v in with_graph["retrieval"].items():
        if key in text_only["retrieval"]:
            gain[f"retrieval_{key}"] = round(v - text_only["retrieval"][key], 4)
    return gain
