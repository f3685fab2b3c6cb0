"""``kira index …``: build, list, verify, add to, delete from, compact and garbage-collect versions.

``--index DIR`` is the workspace directory (``store.duckdb`` and ``indexes/`` live there), or a
directory inside it (``indexes/``, a version), which names the same workspace. Heavy
imports stay inside commands. With ``--json`` the command prints one JSON object on stdout and
everything else (progress bars, Java's log lines) goes to stderr.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from kira.clikit import JsonOpt, ReplaceOpt, deprecated_alias, run, workspace_for
from kira.workspace import opened

app = typer.Typer(help="Build, inspect, update and compact versioned indexes.", no_args_is_help=True,
                  pretty_exceptions_enable=False)

def _workspace_of(value: str | None) -> str | None:
    found = workspace_for(value)
    return str(found) if found else None


# ``--index`` means what it means everywhere (``kira.clikit.INDEX_HELP``); these commands write, so
# they act on the workspace it belongs to. ``--workspace``/``-w`` are the same option here.
IndexOpt = Annotated[str | None, typer.Option("--index", "-i", "--workspace", "-w", envvar="KIRA_WORKSPACE",
                                              callback=_workspace_of,
                                              help="Workspace directory, or its indexes/ or a version directory "
                                                   "(the workspace it belongs to).")]
SourceOpt = Annotated[list[str] | None, typer.Option("--source", "-s",
                                                     help="KIND:PATH (jsonl, csv, parquet, dir, wordnet); repeatable.")]


def _emit(obj: dict[str, Any], as_json: bool, human: str) -> None:
    if as_json:
        print(json.dumps(obj, default=str))
    else:
        print(human)


def _run(fn, as_json: bool):
    return run(fn, json_output=as_json)


def _summary(v) -> dict[str, Any]:
    m = v.manifest
    return {"version": v.name, "path": str(v.path), "passages": m.get("passages"), "op": m.get("op"),
            "created_at": m.get("created_at"), "encoder": (m.get("encoder") or {}).get("spec"),
            "faiss": (m.get("faiss") or {}).get("type"), "stats": m.get("stats"), "verify": m.get("verify")}


@app.command()
def build(
    index: IndexOpt = None,
    source: SourceOpt = None,
    name: Annotated[list[str] | None, typer.Option(help="Source name per --source (default from path).")] = None,
    encoder: Annotated[str | None, typer.Option(help="Encoder spec (default: config, packaged MiniLM).")] = None,
    faiss_type: Annotated[str | None, typer.Option(help="auto | flat | hnsw | ivf-flat | ivf-pq")] = None,
    no_dense: Annotated[bool, typer.Option("--no-dense", help="BM25 only.")] = False,
    words: Annotated[int | None, typer.Option(help="Words per passage (default: config, 100).")] = None,
    overlap: Annotated[int | None, typer.Option(help="Words shared by consecutive passages.")] = None,
    resume: Annotated[bool, typer.Option(help="Reuse finished shards of an interrupted build.")] = True,
    ray: Annotated[bool, typer.Option("--ray", help="Encode with Ray Data (pip install 'kira[ray]').")] = False,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster address (default: local).")] = None,
    replace: ReplaceOpt = False,
    full: Annotated[bool, typer.Option("--full", help="Re-encode everything instead of editing the current "
                                                      "version (only new or changed passages are encoded).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Ingest the sources into the store (all or none), then bring the index up to date: the current
    version edited with only what changed, or a full build (first build, --full, another encoder)."""

    def body():
        from kira.index_build.incremental import update_index
        from kira.index_build.sources import ingest_source

        with opened(index, write=True) as (cfg, store):
            names = list(name or [])
            ingested = []
            with store.transaction():  # one transaction: a bad --source keeps none of the others
                for i, spec in enumerate(source or []):
                    ingested.append(ingest_source(store, spec, names[i] if i < len(names) else None,
                                                  words=cfg.index.passage_words if words is None else words,
                                                  overlap=cfg.index.passage_overlap if overlap is None else overlap,
                                                  replace=replace, max_chars=cfg.ingest.max_chars))
            overrides = {k: val for k, val in (("faiss_type", faiss_type), ("dense", False if no_dense else None),
                                               ("encode_backend", "ray" if ray else None),
                                               ("ray_address", ray_address)) if val is not None}
            v = update_index(cfg, store, full=full, encoder_spec=encoder, resume=resume, progress=True,
                             **overrides)
            return {"sources": ingested, **_summary(v)}

    out = _run(body, as_json)
    _emit(out, as_json, f"{out['version']}: {out['passages']} passages (encoder {out['encoder']}, "
                        f"faiss {out['faiss']}) is current at {out['path']}")


@app.command("list")
def list_(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Finished versions, oldest first, marking the current one."""

    def body():
        from kira.config import load_config
        from kira.index_build.versions import current_name, list_versions

        cfg = load_config(index)
        cur = current_name(cfg.indexes_dir)
        return {"current": cur, "versions": [{**_summary(v), "current": v.name == cur}
                                             for v in list_versions(cfg.indexes_dir)]}

    out = _run(body, as_json)
    lines = [f"{'*' if v['current'] else ' '} {v['version']}  {v['passages']:>9} passages  {v['op']:<8} "
             f"{v['faiss'] or '-':<8} {v['encoder'] or '-'}  {v['created_at']}" for v in out["versions"]]
    _emit(out, as_json, "\n".join(lines) or "no versions")


@app.command()
def verify(index: IndexOpt = None,
           version: Annotated[str | None, typer.Option(help="vNNNN (default: current).")] = None,
           as_json: JsonOpt = False) -> None:
    """Re-run a version's checks: counts (also against the store) and self-retrieval probes."""

    def body():
        from kira.index_build.build import verify_version
        from kira.index_build.versions import IndexVersion, current_version

        with opened(index, create=False) as (cfg, store):
            v = IndexVersion.open(cfg.indexes_dir / version) if version else current_version(cfg.indexes_dir)
            report = verify_version(v, expected=store.count_passages())
            return {"version": v.name, "ok": True, **report}

    out = _run(body, as_json)
    _emit(out, as_json, f"{out['version']}: ok ({out['docids']} passages)")


@app.command()
def add(index: IndexOpt = None, source: SourceOpt = None,
        name: Annotated[str | None, typer.Option(help="Source name (default from path).")] = None,
        words: Annotated[int | None, typer.Option(help="Words per passage.")] = None,
        overlap: Annotated[int | None, typer.Option(help="Overlap in words.")] = None,
        replace: ReplaceOpt = False,
        as_json: JsonOpt = False) -> None:
    """(Re-)ingest one source and apply only its changes to the current version (no full rebuild)."""

    def body():
        from kira.errors import KiraError
        from kira.index_build.incremental import add_passages, fingerprint
        from kira.index_build.sources import default_name, ingest_source, parse_spec
        from kira.index_build.versions import current_version

        if not source or len(source) != 1:
            raise KiraError("add takes exactly one --source KIND:PATH")
        with opened(index, write=True) as (cfg, store):
            cur = current_version(cfg.indexes_dir)
            kind, path = parse_spec(source[0])
            src = name or default_name(kind, path)
            old = {p.id: fingerprint(p) for batch in store.iter_passages(src) for p in batch}
            with store.transaction():  # the store change rolls back if the index edit fails
                src = ingest_source(store, source[0], src,
                                    words=cfg.index.passage_words if words is None else words,
                                    overlap=cfg.index.passage_overlap if overlap is None else overlap,
                                    replace=replace, max_chars=cfg.ingest.max_chars)
                new = [p for batch in store.iter_passages(src) for p in batch]
                gone = sorted(set(old) - {p.id for p in new})
                new = [p for p in new if old.get(p.id) != fingerprint(p)]  # only new or changed text
                v = add_passages(cur, new, cfg=cfg, store=store, delete=gone, expected=store.count_passages())
            return {"source": src, "added": len(new), "deleted": len(gone), **_summary(v)}

    out = _run(body, as_json)
    _emit(out, as_json, f"{out['version']}: +{out['added']} -{out['deleted']} passages from {out['source']}")


@app.command("remove")
def remove(index: IndexOpt = None,
           id: Annotated[list[str] | None, typer.Option("--id", help="Passage id; repeatable.")] = None,
           source: Annotated[str | None, typer.Option("--source", help="Remove a whole source (store too).")] = None,
           as_json: JsonOpt = False) -> None:
    """Remove passages (by id, or a whole text source) from the store and the current version
    (``kb remove`` and ``tables remove`` do the same for KBs and tables)."""

    def body():
        from kira.errors import KiraError
        from kira.index_build.incremental import delete_passages
        from kira.index_build.versions import current_version
        from kira.kb.store import require_source_kind

        if not id and not source:
            raise KiraError("give --id ID (repeatable) or --source NAME")
        with opened(index, write=True) as (cfg, store):
            cur = current_version(cfg.indexes_dir)
            ids = list(id or [])
            if source:
                require_source_kind(store, source, "text")  # KBs and tables have their own remove
                ids += [p.id for batch in store.iter_passages(source) for p in batch]
            with store.transaction():  # the store change rolls back if the index edit fails
                if source:
                    store.remove_source(source)
                store.delete_passages(ids)
                v = delete_passages(cur, ids, cfg=cfg, store=store, missing_ok=bool(source),
                                    expected=store.count_passages())
            return {"deleted": len(ids), **_summary(v)}

    out = _run(body, as_json)
    _emit(out, as_json, f"{out['version']}: deleted {out['deleted']} passages")


# the old spelling still works, hidden, with one deprecation line, so scripts written against it keep running
app.command("delete", hidden=True)(deprecated_alias(remove, "kira index delete", "kira index remove"))


@app.command()
def compact(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Renumber FAISS ids densely and merge Lucene segments into a new version."""

    def body():
        from kira.index_build.incremental import compact as do_compact

        with opened(index, write=True) as (cfg, store):
            return _summary(do_compact(cfg, store))

    out = _run(body, as_json)
    _emit(out, as_json, f"{out['version']}: compacted ({out['passages']} passages)")


@app.command()
def gc(index: IndexOpt = None,
       keep: Annotated[int | None, typer.Option(help="Versions to keep (default: config keep_versions).")] = None,
       as_json: JsonOpt = False) -> None:
    """Remove abandoned builds (.building/.failed) and versions beyond --keep (never current)."""

    def body():
        from kira.config import load_config
        from kira.index_build.versions import prune, remove_stale_builds, writer_lock

        cfg = load_config(index)
        with writer_lock(cfg.indexes_dir):
            stale = remove_stale_builds(cfg.indexes_dir)
            pruned = prune(cfg.indexes_dir, keep or cfg.index.keep_versions)
        return {"removed_builds": stale, "removed_versions": pruned}

    out = _run(body, as_json)
    _emit(out, as_json, f"removed {len(out['removed_builds'])} builds, {len(out['removed_versions'])} versions")
