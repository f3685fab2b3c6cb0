"""``kira graph …``: graph stats, Graph-BERT / GraphFormers training, multi-hop questions, expansion.

Heavy imports (torch, transformers, networkx) happen inside commands so ``kira --help`` stays fast.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from kira.artifacts import kb_artifact_dir
from kira.clikit import JsonOpt, WorkspaceOpt, run

app = typer.Typer(help="Graph views and graph PLMs over KBs.", no_args_is_help=True, pretty_exceptions_enable=False)

KbOpt = Annotated[str, typer.Option("--kb", help="KB (source) name in the store.")]


def _ctx(workspace: str | None):
    """``(cfg, store)`` for reading (``kira.workspace.opened``); closed when the block ends."""
    from kira.workspace import opened

    return opened(workspace)



def _print(obj, as_json: bool) -> None:
    if as_json:
        print(json.dumps(obj, default=str))
    else:
        for k, v in obj.items():
            print(f"{k}: {v}")


@app.command()
def build(kb: KbOpt, workspace: WorkspaceOpt = None,
          split: Annotated[list[str] | None, typer.Option(help="Only triples of these splits (repeatable).")] = None,
          as_json: JsonOpt = False) -> None:
    """Build (or load from cache) the graph view of a KB and print its statistics."""
    def body():
        import time

        from kira.graph.view import cache_dir_for, load_view

        with _ctx(workspace) as (cfg, store):
            t = time.perf_counter()
            view = load_view(store, kb, splits=split, cache_dir=cache_dir_for(cfg))
            _print({**view.stats(), "seconds": round(time.perf_counter() - t, 3), "cache_key": view.key}, as_json)
    run(body)


@app.command("train-graph-bert")
def train_graph_bert(
    kb: KbOpt, workspace: WorkspaceOpt = None,
    features: Annotated[str, typer.Option(help="Zoo encoder for node text features, or 'id' for learned ids.")] = "minilm-l6",
    k: Annotated[int, typer.Option(help="Context size (top-k PPR nodes).")] = 7,
    hidden: int = 64, layers: int = 2,
    pretrain_steps: Annotated[int, typer.Option(help="Masked-node + structure-recovery steps.")] = 200,
    steps: Annotated[int, typer.Option(help="Link-prediction fine-tuning steps.")] = 300,
    batch_size: int = 64, lr: float = 1e-3,
    out: Annotated[str | None, typer.Option(help="Artifact dir (default models/<kb>-graph-bert).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Pretrain Graph-BERT on a KB's train triples, fine-tune for link prediction, save the artifact."""
    def body():
        from pathlib import Path

        from kira.graph import graph_bert as gb
        from kira.graph import graph_bert_predictor as gbp
        from kira.graph.view import cache_dir_for, load_view

        with _ctx(workspace) as (cfg, store):
            view = load_view(store, kb, splits=["train"], cache_dir=cache_dir_for(cfg))
            feats = None if features == "id" else gb.node_features(view, features)
            p = gbp.GraphBertLinkPredictor.create(view, feats, device=cfg.device, k=k, hidden=hidden, layers=layers,
                                                 encoder=None if features == "id" else features)
            report = p.fit(store.iter_triples(kb, split="train"), steps=steps, pretrain_steps=pretrain_steps,
                           batch_size=batch_size, lr=lr)
            d = gbp.save(p.model, Path(out) if out else kb_artifact_dir(cfg.models_dir, kb, "graph-bert"), node_ids=view.node_ids,
                        extra={"kb": kb, "graph_key": view.key, "relation_ids": view.relation_ids, **report})
            _print({"artifact": str(d), **report}, as_json)
    run(body)


@app.command("train-graphformers")
def train_graphformers(
    kb: KbOpt, workspace: WorkspaceOpt = None,
    base: Annotated[str, typer.Option(help="Zoo encoder whose layers start GraphFormers.")] = "minilm-l6",
    neighbours: int = 3, max_length: int = 32, steps: int = 200, batch_size: int = 16, lr: float = 5e-5,
    out: Annotated[str | None, typer.Option(help="Artifact dir (default models/<kb>-graphformers).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train GraphFormers by link prediction (in-batch negatives) on a KB's train triples."""
    def body():
        from pathlib import Path

        from kira.graph.graphformers import GraphFormersLinkPredictor
        from kira.graph.view import cache_dir_for, load_view

        with _ctx(workspace) as (cfg, store):
            view = load_view(store, kb, splits=["train"], cache_dir=cache_dir_for(cfg))
            p = GraphFormersLinkPredictor.create(view, base=base, device=cfg.device, neighbours=neighbours,
                                                 max_length=max_length)
            report = p.fit(store.iter_triples(kb, split="train"), steps=steps, batch_size=batch_size, lr=lr)
            d = p.model.save(Path(out) if out else kb_artifact_dir(cfg.models_dir, kb, "graphformers"),
                             extra={"kb": kb, "graph_key": view.key, "relation_ids": view.relation_ids, **report})
            _print({"artifact": str(d), **report}, as_json)
    run(body)


@app.command("multihop-questions")
def multihop_questions(
    kb: KbOpt, out: Annotated[str, typer.Option(help="Output JSONL ({question, answers, kb, path}).")],
    workspace: WorkspaceOpt = None,
    templates: Annotated[str | None, typer.Option(help="JSON/YAML: {'r1/r2': 'pattern with {x}', '*': ...}.")] = None,
    max_questions: int = 1000, max_answers: int = 3, max_per_pair: int = 50, seed: int = 0,
    relation: Annotated[list[str] | None, typer.Option(
        "--relation", help="Only paths over these relations (id or name; repeatable).")] = None,
    heldout: Annotated[float, typer.Option(
        help="Fraction of questions marked split=heldout (by start entity) for evaluation.")] = 0.0,
    as_json: JsonOpt = False,
) -> None:
    """Write two-relation-path questions built from a KB."""
    def body():
        from kira.graph.multihop import questions_from_store
        from kira.jsonl import write_jsonl

        with _ctx(workspace) as (_, store):
            rows = questions_from_store(store, kb, templates=templates, max_questions=max_questions,
                                        max_answers=max_answers, max_per_pair=max_per_pair, seed=seed,
                                        relations=relation or None)
            if heldout:
                from kira.graph.multihop import split_by_start_entity

                rows = split_by_start_entity(rows, heldout, seed)
            n = write_jsonl(out, rows)
            _print({"questions": n, "out": out}, as_json)
    run(body)


@app.command()
def expand(
    question: Annotated[str, typer.Argument(help="The question.")], workspace: WorkspaceOpt = None,
    kb: Annotated[list[str] | None, typer.Option("--kb", help="Restrict to these KBs (repeatable).")] = None,
    k: int = 10, hops: int = 2,
    encoder: Annotated[str | None, typer.Option(help="Zoo encoder for relevance; 'none' = token overlap.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the KB facts graph expansion finds for a question, with provenance."""
    def body():
        from kira.graph.expansion import GraphExpansionRetriever

        with _ctx(workspace) as (cfg, store):
            enc = None if encoder == "none" else (encoder or cfg.index.encoder)
            r = GraphExpansionRetriever.from_config(cfg, store, kbs=kb, encoder=enc, hops=hops)
            hits = r.search(question, k=k)
            if as_json:
                print(json.dumps({"question": question, "evidence": [e.to_dict() for e in hits]}, default=str))
                return
            for i, e in enumerate(hits, 1):
                print(f"{i:2d}. [{e.score:.3f}] {e.text}")
                print(f"      path: {' -> '.join(e.metadata['path'])}  kb: {e.metadata['kb']}")
    run(body)


@app.command("multihop-compare")
def multihop_compare(
    questions: Annotated[str, typer.Option(help="JSONL from multihop-questions.")], workspace: WorkspaceOpt = None,
    method: Annotated[str, typer.Option(help="Text retriever: bm25 | dense | hybrid.")] = "bm25",
    k: int = 10, limit: Annotated[int, typer.Option(help="Use at most this many questions (0 = all).")] = 0,
    encoder: Annotated[str | None, typer.Option(help="Zoo encoder for graph relevance; 'none' = overlap.")] = None,
    reader: Annotated[str | None, typer.Option(
        help="Extractive reader (artifact dir or zoo spec) for EM/F1 via kira.reader.evaluate; "
             "'auto' = the workspace's reader if trained.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Text retrieval alone vs text + graph expansion on multi-hop questions: answer recall@k and,
    with a reader, the same EM/F1 ``kira eval qa`` reports (its ``evaluate_qa``)."""
    def body():
        from pathlib import Path

        from kira.graph.expansion import GraphExpansionRetriever, TextPlusGraphRetriever
        from kira.graph.multihop import compare_retrieval
        from kira.retriever import open_retrievers
        from kira.retriever.evaluate import load_questions

        with _ctx(workspace) as (cfg, store):
            qs = load_questions(questions)
            if limit:
                qs = qs[:limit]
            text = open_retrievers(cfg.indexes_dir, cfg)[method]
            enc = None if encoder == "none" else (encoder or cfg.index.encoder)
            graph = GraphExpansionRetriever.from_config(cfg, store, encoder=enc)
            result = compare_retrieval(qs, text, graph, k=k)
            spec = reader
            if reader == "auto":
                from kira.pipeline import default_reader_dir

                spec = str(default_reader_dir(cfg, "extractive"))
                spec = spec if Path(spec).exists() else None
            if spec:
                from kira.reader.evaluate import evaluate_qa
                from kira.reader.extractive import ExtractiveReader

                rd = {"extractive": ExtractiveReader.load(spec, device=cfg.device)}
                for name, ret in (("text", text), ("text+graph", TextPlusGraphRetriever(text, graph))):
                    qa = evaluate_qa(qs, ret, rd, k=k)
                    result[name]["qa"] = {"em": qa["extractive"]["em"], "f1": qa["extractive"]["f1"]}
            _print(result, as_json)
    run(body)
