"""``kira kb …``: plug knowledge bases in and out, embed them, link questions, show facts;
``kira eval kb``: filtered link prediction of an embedding artifact. Heavy imports stay inside
commands so ``kira --help`` stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from kira.artifacts import kb_artifact_dir, kb_artifact_dirs
from kira.clikit import JsonOpt, ReplaceOpt, WorkspaceOpt, run
from kira.errors import KiraError

app = typer.Typer(help="Plug in, remove and embed knowledge bases.", no_args_is_help=True,
                  pretty_exceptions_enable=False)





def _opened(workspace: str | None, write: bool = False):
    """``(cfg, store)`` of a workspace (``kira.workspace.opened``: writers lock, readers never fail)."""
    from kira.workspace import opened

    return opened(workspace, write=write)


def _parse_options(options: list[str]) -> dict:
    """``key=value`` pairs; values with commas become tuples (``pos=n,v``), numbers become numbers."""
    out: dict = {}
    for o in options:
        if "=" not in o:
            raise KiraError(f"--option {o!r}: expected key=value")
        k, v = o.split("=", 1)
        if "," in v:
            out[k] = tuple(x for x in v.split(",") if x)
        else:
            try:
                out[k] = int(v)
            except ValueError:
                out[k] = v
    return out


def _rebuild_index(cfg, store) -> str | None:
    """Publish an index version holding every store passage, editing the current one when it can
    (only the KB's passages are encoded); None when the store holds no passages."""
    from kira.index_build.incremental import update_index

    if store.count_passages() == 0:
        print("kira: note: the store holds no passages, so no new index version was built "
              "(an existing indexes/current still serves the old passages)", file=sys.stderr)
        return None
    version = update_index(cfg, store, progress=False)
    return Path(version.path).name


@app.command()
def add(
    name: Annotated[str, typer.Argument(help="KB name (also the source name of its passages).")],
    paths: Annotated[list[str], typer.Argument(help="Files or directory (tsv side files: entities=F aliases=F relations=F).")],
    source: Annotated[str, typer.Option("--source", "-s", help="Source type: tsv, csv, jsonl, rdf, wordnet, pykeen, or a plug-in.")] = "tsv",
    index: Annotated[str | None, typer.Option("--index", help="Workspace whose index gets a new version (default: --workspace).")] = None,
    no_index: Annotated[bool, typer.Option("--no-index", help="Only ingest; do not publish a new index version.")] = False,
    templates: Annotated[Path | None, typer.Option(help="Per-KB sentence templates (YAML/JSON relation → pattern).")] = None,
    option: Annotated[list[str] | None, typer.Option("--option", "-o", help="Source option key=value (e.g. pos=n,v).")] = None,
    no_verbalize: Annotated[bool, typer.Option("--no-verbalize", help="Store facts only, no passages.")] = False,
    max_facts: Annotated[int, typer.Option(help="Facts per verbalized passage.")] = 16,
    adapter: Annotated[bool, typer.Option(
        "--adapter", help="Also train a K-Adapter for the workspace's extractive reader on the KB's facts "
                          "(base frozen; saved as models/<kb>-adapter, loaded at ask time, removed with the KB).")] = False,
    adapter_steps: Annotated[int, typer.Option(help="K-Adapter training steps.")] = 200,
    replace: ReplaceOpt = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate and ingest a KB (one transaction), verbalize it, then publish a new index version."""

    def body():
        from kira.kb.plugin import add_kb

        with _opened(index or workspace, write=True) as (cfg, store):
            rep = add_kb(store, name, source, paths, verbalize=not no_verbalize, templates=templates,
                         max_facts=max_facts, options=_parse_options(option or []), replace=replace)
            out = rep.to_dict()
            if not no_index:
                out["index_version"] = _rebuild_index(cfg, store)
            if adapter:
                out["adapter"] = _train_adapter(cfg, store, name, adapter_steps)
        if as_json:
            print(json.dumps(out))
        else:
            print(f"{name}: version {rep.version}: {rep.n_entities} entities, {rep.n_relations} relations, "
                  f"{rep.n_triples} triples {rep.splits}, {rep.n_passages} passages"
                  + (f"; index {out['index_version']}" if out.get("index_version") else ""))
            if out.get("adapter"):
                a = out["adapter"]
                print(f"{name}: K-Adapter {a['path']} ({a['steps']} steps, {a['adapter_seconds']:.0f}s; "
                      f"embedder {a['embedder']}, {a['embedder_seconds']:.0f}s)")

    run(body)


def _train_adapter(cfg, store, kb: str, steps: int) -> dict:
    """``kira kb add --adapter``: the K-Adapter of ``kb`` for the workspace's extractive reader, timed
    apart from the ingest and the index build."""
    from kira.pipeline import default_reader_dir
    from kira.reader.knowledge_train import build_kb_adapter

    spec = cfg.reader.extractive or default_reader_dir(cfg, "extractive")
    if not Path(str(spec)).exists():
        raise KiraError(f"--adapter needs the workspace's extractive reader, and {spec} does not exist; "
                        "train one with `kira reader train` or set reader.extractive in kira.toml")
    return build_kb_adapter(cfg.models_dir, store, kb, str(spec), steps)


@app.command()
def remove(
    name: Annotated[str, typer.Argument(help="KB name.")],
    no_index: Annotated[bool, typer.Option("--no-index", help="Do not publish a new index version.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Remove a KB's facts, passages and embedding artifacts (models/<name>-*), then re-index."""

    def body():
        from kira.kb.plugin import remove_kb

        with _opened(workspace, write=True) as (cfg, store):
            removed = remove_kb(store, name, models_dir=cfg.models_dir)
            version = None if no_index else _rebuild_index(cfg, store)
        print(f"removed {name}" + (f" and {len(removed)} artifact(s)" if removed else "")
              + (f"; index {version}" if version else ""))

    run(body)


@app.command("list")
def list_(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """KBs in the workspace with versions and counts."""

    def body():
        from kira.kb.plugin import list_kbs

        with _opened(workspace) as (_, store):
            rows = [{"name": s["name"], "kind": s["kind"], "version": s["version"], **{
                k: s["metadata"].get(k) for k in ("n_entities", "n_relations", "n_triples", "n_passages", "splits")}}
                for s in list_kbs(store)]
        if as_json:
            print(json.dumps(rows))
            return
        for r in rows:
            print(f"{r['name']}\t{r['kind']}\tv{r['version']}\t{r['n_entities']} entities\t"
                  f"{r['n_triples']} triples\t{r['n_passages']} passages")

    run(body)


@app.command()
def embed(
    kb: Annotated[str, typer.Option("--kb", help="KB name.")],
    model: Annotated[str, typer.Option(help="transe | transh | transd | kepler")] = "transe",
    dim: Annotated[int, typer.Option(help="Embedding width (TransE/H/D).")] = 50,
    epochs: Annotated[int | None, typer.Option(help="Training epochs (default 100 TransE/H/D, 1 KEPLER).")] = None,
    batch_size: Annotated[int, typer.Option(help="Positive triples per batch.")] = 256,
    lr: Annotated[float | None, typer.Option(help="Learning rate (default 0.01; KEPLER 1e-4, 1e-2 for tiny encoders).")] = None,
    margin: Annotated[float, typer.Option(help="Margin of the ranking loss.")] = 1.0,
    p_norm: Annotated[int | None, typer.Option(help="1 or 2 (default: 1 TransE, 2 TransH/TransD).")] = None,
    negs: Annotated[int, typer.Option(help="Negatives per positive.")] = 1,
    seed: Annotated[int, typer.Option()] = 0,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    encoder: Annotated[str, typer.Option(help="KEPLER text encoder spec.")] = "tiny-bert",
    out: Annotated[Path | None, typer.Option(help="Artifact dir (default models/<kb>-<model>).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a KB embedding on the KB's train split, save it as an artifact, report test MRR."""

    def body():
        from kira.kb.evaluate import evaluate_embedder

        with _opened(workspace) as (cfg, store):
            if kb not in store.list_kbs():
                raise KiraError(f"no knowledge base named {kb!r}")
            train = list(store.iter_triples(kb, split="train"))
            test = list(store.iter_triples(kb, split="test"))
            all_triples = list(store.iter_triples(kb))
            entities = list(store.iter_entities(kb))
            relations = [r.id for r in store.list_relations(kb)]
            target = out or kb_artifact_dir(cfg.models_dir, kb, model)
            if model == "kepler":
                from kira.kb.kepler import Kepler

                k_lr = lr or (1e-2 if encoder.startswith("tiny-") else 1e-4)
                emb = Kepler(encoder=encoder, margin=margin, lr=k_lr, epochs=epochs or 1, batch_size=min(batch_size, 32),
                             seed=seed, device=device)
                report = emb.fit(train, entities=entities, relations=relations)
            else:
                from kira.kb.embeddings import KGEmbedder

                emb = KGEmbedder(model, dim=dim, epochs=epochs or 100, batch_size=batch_size, lr=lr or 0.01, margin=margin,
                                 p_norm=p_norm, num_negs=negs, seed=seed, device=device)
                report = emb.fit(train, entities=[e.id for e in entities], relations=relations)
            res = evaluate_embedder(emb, test, all_triples) if test else None
            emb.save(target, extra={"kb": kb, "test": res.to_dict() if res else None},
                     sources=[store.get_source(kb)] if store.get_source(kb) else None)
        row = {"kb": kb, "model": model, "artifact": str(target), "seconds": report["seconds"],
               "triples_per_s": report["triples_per_s"], "test": res.to_dict() if res else None}
        if as_json:
            print(json.dumps(row))
        else:
            print(f"saved {target} ({report['seconds']:.1f}s, {report['triples_per_s']:.0f} triples/s)")
            if res:
                print(f"test: MRR {res.mrr:.4f}  Hits@1 {res.hits_at_1:.4f}  Hits@3 {res.hits_at_3:.4f}  "
                      f"Hits@10 {res.hits_at_10:.4f}  (n={res.n}, filtered, both sides)")

    run(body)


@app.command()
def link(
    question: Annotated[str, typer.Argument(help="Text to link.")],
    kb: Annotated[list[str] | None, typer.Option("--kb", help="Restrict to these KBs.")] = None,
    encoder: Annotated[str | None, typer.Option(help="Encoder for disambiguation (default: index encoder).")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Entities mentioned in a question (alias lookup, then embedding disambiguation)."""

    def body():
        from kira.kb.linking import EntityLinker

        with _opened(workspace) as (cfg, store):
            links = EntityLinker(store, kbs=kb, encoder_spec=encoder or cfg.index.encoder).link(question)
        rows = [{"mention": x.mention, "kb": x.kb, "id": x.entity_id, "name": x.name, "score": x.score} for x in links]
        if as_json:
            print(json.dumps(rows))
            return
        for r in rows:
            print(f"{r['mention']!r}\t{r['kb']}:{r['id']}\t{r['name']}\t{r['score']:.3f}")

    run(body)


@app.command()
def facts(
    entity: Annotated[str, typer.Argument(help="Entity id, name or alias.")],
    kb: Annotated[str | None, typer.Option("--kb", help="KB to look in.")] = None,
    limit: Annotated[int, typer.Option(help="Facts to show.")] = 50,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An entity's facts, verbalized, with their triples."""

    def body():
        from kira.kb.linking import KBFactRetriever

        with _opened(workspace) as (_, store):
            kbs = [kb] if kb else store.list_kbs()
            ents = [e for k in kbs for e in store.get_entities(k, [entity])] or store.find_entities(entity, kb=kb, limit=1)
            if not ents:
                raise KiraError(f"no entity {entity!r}" + (f" in {kb!r}" if kb else ""))
            e = ents[0]
            ret = KBFactRetriever(store)
            triples = store.triples_about(e.kb, e.id)[:limit]
            ids = sorted({x for t in triples for x in (t.head, t.tail)})
            names = {x.id: x.name for x in store.get_entities(e.kb, ids)}
            rels = {r.id: r.name for r in store.list_relations(e.kb)}
            rows = [{"triple": [t.head, t.relation, t.tail], "split": t.split,
                     "text": ret.verbalize(e.kb, t, names, rels)} for t in triples]
        if as_json:
            print(json.dumps({"kb": e.kb, "id": e.id, "name": e.name, "aliases": e.aliases,
                              "description": e.description, "facts": rows}))
            return
        print(f"{e.kb}:{e.id}  {e.name}" + (f"  ({', '.join(e.aliases)})" if e.aliases else ""))
        if e.description:
            print(f"  {e.description}")
        for r in rows:
            print(f"  {r['text']}\t{r['triple']}")

    run(body)


def eval_kb(
    kb: Annotated[str, typer.Option("--kb", help="KB name.")],
    model: Annotated[Path | None, typer.Option("--model", help="Artifact dir (default newest models/<kb>-*).")] = None,
    split: Annotated[str, typer.Option(help="Split to rank: test | valid.")] = "test",
    unfiltered: Annotated[bool, typer.Option(help="Raw instead of filtered ranks.")] = False,
    batch_size: Annotated[int, typer.Option(help="Queries scored at once.")] = 256,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Filtered link prediction (MRR, Hits@1/3/10, both sides, realistic ties) of a KB embedding."""

    def body():
        from kira.kb.embeddings import load_embedder
        from kira.kb.evaluate import evaluate_embedder

        with _opened(workspace) as (cfg, store):
            target = model
            if target is None:
                cands = kb_artifact_dirs(cfg.models_dir, kb)
                if not cands:
                    raise KiraError(f"no embedding artifact for {kb!r} under {cfg.models_dir}; run `kira kb embed --kb {kb}`")
                target = max(cands, key=lambda p: p.stat().st_mtime)
            emb = load_embedder(target)
            rows = list(store.iter_triples(kb, split=split))
            if not rows:
                raise KiraError(f"KB {kb!r} has no {split!r} triples")
            res = evaluate_embedder(emb, rows, list(store.iter_triples(kb)), batch_size=batch_size,
                                    filtered=not unfiltered)
        if as_json:
            print(json.dumps({"kb": kb, "model": str(target), "split": split, **res.to_dict()}))
            return
        print(f"{kb} {split} ({target}): MRR {res.mrr:.4f}  Hits@1 {res.hits_at_1:.4f}  Hits@3 {res.hits_at_3:.4f}  "
              f"Hits@10 {res.hits_at_10:.4f}  MR {res.mean_rank:.1f}  n={res.n}")

    run(body)
