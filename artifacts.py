"""Trained artifacts: one ``kira.json`` format, one resolver from type to loader, staleness.

Every model kira trains is a directory holding its weights and a ``kira.json`` with its ``type``
(``extractive-reader``, ``fid-reader``, ``table-qa``, ``kge``, …), the artifact ``format_version``,
the kira version and time that wrote it, and — when the trainer knows them — the ``sources`` (name,
version, checksum) it learned from. :func:`loader_for` maps a type to its loader through the
``kira.artifacts`` entry-point group (``pyproject.toml``), the way ``kira.sources`` maps KB source
types, so a plug-in package can add artifact types and nothing dispatches on ``type`` by hand.
:func:`stale_sources` says which of an artifact's sources changed since it was trained.
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from kira.errors import KiraError

FORMAT_VERSION = 1
CONFIG_FILE = "kira.json"
GROUP = "kira.artifacts"


def source_records(sources: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """What an artifact keeps of the store's sources it learned from (``store.list_sources()`` rows)."""
    return [{"name": s["name"], "version": s.get("version"), "checksum": s.get("checksum")} for s in sources]


def write_config(directory: str | os.PathLike, config: dict[str, Any],
                 sources: Iterable[dict[str, Any]] | None = None) -> Path:
    """Write ``kira.json``: ``config`` (it must say its ``type``) stamped with the format version,
    the kira version, the time and, when given, the sources the artifact learned from."""
    from kira import __version__

    if not config.get("type"):
        raise KiraError(f"{directory}: an artifact's kira.json needs a 'type'")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = {**config, "format_version": FORMAT_VERSION, "kira_version": __version__,
           "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    if sources is not None:
        out["sources"] = source_records(sources)
    return _replace_config(d, out)


def update_config(directory: str | os.PathLike, changes: dict[str, Any]) -> Path:
    """Change some fields of an existing artifact's ``kira.json`` (e.g. a refitted calibration),
    keeping the rest -- its type, format version and the sources it learned from."""
    return _replace_config(Path(directory), {**read_config(directory), **changes})


def _replace_config(d: Path, config: dict[str, Any]) -> Path:
    """Write ``kira.json`` atomically: a server loading the artifact meanwhile never reads half of it."""
    tmp = d / (CONFIG_FILE + ".tmp")
    tmp.write_text(json.dumps(config, indent=2, sort_keys=True, default=str))
    os.replace(tmp, d / CONFIG_FILE)
    return d / CONFIG_FILE


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """An artifact's ``kira.json``; a clear error when it is missing or written by a newer format."""
    p = Path(directory) / CONFIG_FILE
    if not p.exists():
        raise KiraError(f"{directory}: not a kira artifact (no {CONFIG_FILE})")
    cfg = json.loads(p.read_text())
    if int(cfg.get("format_version", 0)) > FORMAT_VERSION:
        raise KiraError(f"{directory}: artifact format {cfg['format_version']} is newer than this kira "
                        f"understands ({FORMAT_VERSION}); upgrade kira")
    return cfg


def artifact_types() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def loader_for(artifact_type: str) -> Callable[..., Any]:
    """The loader registered for an artifact type (``kira.artifacts`` entry points)."""
    eps = {ep.name: ep for ep in entry_points(group=GROUP)}
    if artifact_type not in eps:
        raise KiraError(f"no loader for artifact type {artifact_type!r} (known: {', '.join(sorted(eps))})")
    return eps[artifact_type].load()


def load(directory: str | os.PathLike, **kwargs: Any) -> Any:
    """Load any artifact directory with the loader its ``type`` names."""
    return loader_for(read_config(directory)["type"])(str(directory), **kwargs)


def stale_sources(config: dict[str, Any], current: Iterable[dict[str, Any]]) -> list[str]:
    """Names of the sources an artifact learned from that changed (new version or checksum) or
    are gone; [] when it recorded none."""
    now = {s["name"]: s for s in current}
    out = []
    for s in config.get("sources") or []:
        cur = now.get(s["name"])
        if cur is None or (cur.get("version"), cur.get("checksum")) != (s.get("version"), s.get("checksum")):
            out.append(s["name"])
    return out


def list_artifacts(models_dir: str | os.PathLike, current_sources: Iterable[dict[str, Any]] = ()) -> list[dict]:
    """Every artifact under ``models_dir`` with its type, format, age and staleness."""
    current = list(current_sources)
    rows = []
    for d in sorted(Path(models_dir).glob("*")) if Path(models_dir).is_dir() else []:
        if not (d / CONFIG_FILE).exists():
            continue
        try:
            cfg = read_config(d)
        except (KiraError, ValueError) as e:
            rows.append({"name": d.name, "type": None, "error": str(e)})
            continue
        rows.append({"name": d.name, "type": cfg.get("type"), "format_version": cfg.get("format_version", 0),
                     "created_at": cfg.get("created_at"), "stale": stale_sources(cfg, current),
                     "sources": [s["name"] for s in cfg.get("sources") or []]})
    return rows


# ---- where a workspace keeps its artifacts: the one place these names are written --------------
WORKSPACE_ROLES = ("reader-extractive", "reader-fid", "reader-data", "table-parser", "table-qa", "table-data",
                   "graph-cache", "dpr")


def role_dir(models_dir: str | os.PathLike, role: str) -> Path:
    """``models/<role>``: the directory of a workspace-wide artifact (the default readers, the table
    parser, TAPAS, the graph cache, the fine-tuned DPR encoder)."""
    if role not in WORKSPACE_ROLES:
        raise KiraError(f"unknown artifact role {role!r} (known: {', '.join(WORKSPACE_ROLES)})")
    return Path(models_dir) / role


def kb_artifact_dir(models_dir: str | os.PathLike, kb: str, model: str) -> Path:
    """``models/<kb>-<model>``: an artifact trained for one KB (embeddings, Graph-BERT, GraphFormers),
    removed with the KB. Its ``kira.json`` must say ``"kb": <kb>`` (see ``kb_artifact_dirs``)."""
    d = Path(models_dir) / f"{kb}-{model}"
    if d.name in WORKSPACE_ROLES:
        raise KiraError(f"a KB named {kb!r} with model {model!r} would overwrite the workspace's {d.name}")
    return d


def kb_artifact_dirs(models_dir: str | os.PathLike, kb: str) -> list[Path]:
    """Artifacts trained for KB ``kb``: ``<kb>-*`` directories whose ``kira.json`` names that KB.

    The name alone is not enough: KB ``wordnet``'s glob also matches ``wordnet-small-transe`` (KB
    ``wordnet-small``), and a KB named ``reader`` would match the default readers."""
    root = Path(models_dir)
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.glob(f"{glob.escape(kb)}-*")):
        if not d.is_dir() or d.name in WORKSPACE_ROLES or not (d / CONFIG_FILE).exists():
            continue
        try:
            owner = json.loads((d / CONFIG_FILE).read_text()).get("kb")
        except (OSError, ValueError):
            continue
        if owner == kb:
            out.append(d)
    return out
