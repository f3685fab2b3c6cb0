"""Who may open a workspace's store, and how: one writer at a time, readers never fail.

DuckDB lets one process open a database file read-write *or* many processes open it read-only,
never both. kira builds its concurrency model on that:

- **Writers** (``kira index build/add/delete``, ``kira kb add/remove``, ``kira tables add/remove``,
  the server's admin jobs) take the workspace's exclusive lock (``<workspace>/.kira.lock``), waiting
  up to ``KIRA_LOCK_WAIT`` seconds (default 600) with one line naming the holder, then open the live
  store read-write.
- **Readers** (``kira kb list``, ``kira index verify``, ``kira tables list``, evaluations) take the
  shared lock and open the live store read-only; when a writer holds the workspace they read the
  store snapshot of the current index version instead, and say so in one line.
- **Answering** (``kira ask``, the HTTP server) never opens the live store: each published index
  version carries a read-only snapshot of the store it was built from
  (``indexes/vNNNN/store.duckdb``), so KB facts, tables and graph expansion always come from the
  same version as the passages, and a writer never waits for the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from kira.errors import KiraError

if TYPE_CHECKING:
    from kira.kb.store import DuckDBStore

LOCK_FILE = ".kira.lock"
HOLDERS_DIR = ".kira-holders"  # one small JSON file per lock holder, so a waiter can name them
DEFAULT_WAIT_S = 600.0


class WorkspaceBusy(KiraError):
    """The workspace is held by another writer (or readers) for longer than the caller would wait."""


def lock_wait_seconds() -> float:
    try:
        return float(os.environ.get("KIRA_LOCK_WAIT", DEFAULT_WAIT_S))
    except ValueError:
        return DEFAULT_WAIT_S


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holders(workspace: Path) -> list[dict]:
    """Live processes holding the workspace lock (stale records of dead processes are skipped)."""
    d = Path(workspace) / HOLDERS_DIR
    out = []
    for f in sorted(d.glob("*.json")) if d.is_dir() else []:
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(rec.get("pid", 0))):
            out.append(rec)
        else:
            f.unlink(missing_ok=True)
    return out


def describe_holders(workspace: Path) -> str:
    hs = holders(workspace)
    if not hs:
        return "another kira process"
    return "; ".join(f"pid {h['pid']} ({h['mode']}: `{h['command']}`, since {h['since']})" for h in hs)


def _command() -> str:
    """This process as a user would name it: ``kira index build``, ``pytest -q``, ``python``."""
    argv = list(sys.argv) or ["python"]
    prog = Path(argv[0])
    name = prog.parent.name if prog.name == "__main__.py" else prog.name
    if "kira.cli" in sys.modules and name in ("kira", "main", "__main__.py") or prog.name == "__main__.py" \
            and (prog.parent / "cli.py").exists() and "kira.cli" in sys.modules:
        name = "kira"
    return " ".join([name or "python", *argv[1:4]])


@contextlib.contextmanager
def _holder_record(workspace: Path, mode: str) -> Iterator[None]:
    d = Path(workspace) / HOLDERS_DIR
    d.mkdir(parents=True, exist_ok=True)
    rec = d / f"{os.getpid()}-{mode}-{time.monotonic_ns()}.json"
    rec.write_text(json.dumps({"pid": os.getpid(), "mode": mode, "command": _command(),
                               "since": datetime.now().isoformat(timespec="seconds")}))
    try:
        yield
    finally:
        rec.unlink(missing_ok=True)


@contextlib.contextmanager
def workspace_lock(workspace: str | os.PathLike, *, shared: bool = False, wait: float | None = None,
                   say=None) -> Iterator[None]:
    """The workspace's lock: exclusive for a writer, shared for readers.

    Waits up to ``wait`` seconds (default ``KIRA_LOCK_WAIT``), printing one line naming the holder
    when it has to wait; raises :class:`WorkspaceBusy` after that. ``wait=0`` never waits.
    """
    ws = Path(workspace)
    ws.mkdir(parents=True, exist_ok=True)
    wait = lock_wait_seconds() if wait is None else wait
    say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
    mode = "reader" if shared else "writer"
    with open(ws / LOCK_FILE, "a+") as fh:
        flag = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        start = time.monotonic()
        deadline = start + wait
        told = False
        while True:
            try:
                fcntl.flock(fh, flag)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WorkspaceBusy(f"workspace {ws} is in use by {describe_holders(ws)}; try again when it "
                                        f"finishes (waited {wait:.0f} s; KIRA_LOCK_WAIT sets how long)") from None
                if not told and time.monotonic() - start >= 1.0:  # one line, and none for a short wait
                    say(f"kira: waiting up to {wait:.0f} s for {describe_holders(ws)} to finish with {ws}")
                    told = True
                time.sleep(0.2)
        try:
            with _holder_record(ws, mode):
                yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def try_shared_lock(workspace: Path):
    """A held shared lock (call ``.close()`` to release) or None when a writer holds the workspace."""
    stack = contextlib.ExitStack()
    try:
        stack.enter_context(workspace_lock(workspace, shared=True, wait=0, say=lambda m: None))
    except WorkspaceBusy:
        stack.close()
        return None
    return stack


def connect(path: str | os.PathLike, read_only: bool) -> DuckDBStore:
    """Open a store file; DuckDB's own lock conflict becomes one line naming the other process."""
    import duckdb

    from kira.kb.store import open_store as open_store_file

    try:
        return open_store_file(path, read_only=read_only)
    except duckdb.IOException as e:
        msg = str(e).split("\n")[0]
        if "lock" in msg.lower():
            raise WorkspaceBusy(f"{path} is open in another process that does not use kira's workspace "
                                f"lock ({msg.split(':', 1)[-1].strip()})") from None
        raise


def open_snapshot(version) -> DuckDBStore | None:
    """The read-only store snapshot published with an index version, or None for a version built
    before snapshots existed."""
    p = version.snapshot_path
    return connect(p, read_only=True) if p.exists() else None


def _current_snapshot(cfg) -> DuckDBStore | None:
    from kira.index_build.versions import current_version

    try:
        return open_snapshot(current_version(cfg.indexes_dir))
    except KiraError:
        return None


@contextlib.contextmanager
def open_store(cfg, *, write: bool = False, wait: float | None = None, create: bool = True,
               say=None) -> Iterator[DuckDBStore]:
    """The workspace's store for one command: see the module docstring for who gets what."""
    say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
    path = Path(cfg.store_path)
    if write:
        with workspace_lock(cfg.workspace, wait=wait, say=say):
            if not create and not path.exists():
                raise KiraError(f"no store at {path}: run `kira index build --index {cfg.workspace} --source ...`")
            store = connect(path, read_only=False)
            try:
                yield store
            finally:
                store.close()
        return
    held = try_shared_lock(cfg.workspace)
    if held is None:  # a writer is active: read what the current version was built from
        snap = _current_snapshot(cfg)
        if snap is None:
            raise WorkspaceBusy(f"workspace {cfg.workspace} is being written by {describe_holders(cfg.workspace)} "
                                "and has no published index snapshot to read meanwhile; try again when it finishes")
        say(f"kira: {describe_holders(cfg.workspace)} is writing {cfg.workspace}; "
            "reading the store as of the current index version")
        try:
            yield snap
        finally:
            snap.close()
        return
    try:
        if not path.exists():
            raise KiraError(f"no store at {path}: run `kira index build --index {cfg.workspace} --source ...`")
        store = connect(path, read_only=True)
        try:
            yield store
        finally:
            store.close()
    finally:
        held.close()


@contextlib.contextmanager
def opened(workspace: str | os.PathLike | None, *, write: bool = False, create: bool = True):
    """``(cfg, store)`` of a workspace for one command (``open_store`` rules); closed however it ends."""
    from kira.config import load_config

    cfg = load_config(workspace)
    with open_store(cfg, write=write, create=create) as store:
        yield cfg, store


def acquire_store(cfg, *, write: bool = False, create: bool = True) -> DuckDBStore:
    """Like :func:`open_store` for code that closes the store itself: ``store.close()`` also
    releases the workspace lock."""
    stack = contextlib.ExitStack()
    store = stack.enter_context(open_store(cfg, write=write, create=create))
    store.on_close.append(stack.close)
    return store


def answering_store(cfg, version) -> DuckDBStore | None:
    """The store ``kira ask`` and the server read for ``version``: its snapshot (read-only), or —
    for a version built before snapshots — the live store read-only, with a warning that writers
    will have to wait for this process. None when the workspace has no store at all."""
    snap = open_snapshot(version)
    if snap is not None:
        return snap
    if not Path(cfg.store_path).exists():
        return None
    import logging

    logging.getLogger("kira").warning(
        "index %s has no store snapshot (built by an older kira): reading the live store read-only, "
        "so writers wait until this process ends; rebuild the index to fix this", version.name)
    return connect(cfg.store_path, read_only=True)


def upgrade(workspace: str | os.PathLike | None) -> str:
    """``kira workspace upgrade``: give the current index version its store snapshot when it was
    built before snapshots existed and the store still holds exactly its passages (a clear error
    naming ``kira index build --full`` when the store has moved on), and stamp the owning KB into
    ``<kb>-<model>`` artifacts written before artifacts named it (``kira.artifacts.kb_artifact_dirs``)."""
    from kira.index_build.versions import current_version

    with opened(workspace, write=True) as (cfg, store):
        stamped = stamp_kb_artifacts(cfg.models_dir, store.list_kbs())
        note = f"; {len(stamped)} KB artifact(s) now name their KB" if stamped else ""
        try:
            cur = current_version(cfg.indexes_dir)
        except KiraError:
            return f"{cfg.workspace}: no index version yet; nothing else to upgrade{note}"
        if cur.snapshot_path.exists():
            return f"{cfg.workspace}: up to date ({cur.name} has its store snapshot){note}"
        ids = {p.id for batch in store.iter_passages() for p in batch}
        if ids != set(cur.docids()) - {""}:
            raise KiraError(f"{cur.name} was built from other passages than the store holds now; "
                            "run `kira index build --full` to publish a version with its snapshot")
        rows = store.write_snapshot(cur.snapshot_path)
        return f"{cfg.workspace}: {cur.name} now has its store snapshot ({rows.get('passages', 0)} passages){note}"


def stamp_kb_artifacts(models_dir: Path, kbs: list[str]) -> list[Path]:
    """Older ``<kb>-<model>`` artifacts without a ``kb`` field get it, when exactly one current KB
    and a known KB model explain the directory name."""
    from kira.artifacts import CONFIG_FILE
    from kira.kb.kge_models import MODELS as KGE_MODELS  # here, not at import: it loads torch

    suffixes = (*KGE_MODELS, "kepler", "graph-bert", "graphformers")  # the names `kira kb embed`/`graph` write

    out = []
    for d in sorted(Path(models_dir).glob("*-*")) if Path(models_dir).is_dir() else []:
        cfg_file = d / CONFIG_FILE
        if not cfg_file.exists():
            continue
        conf = json.loads(cfg_file.read_text())
        if conf.get("kb"):
            continue
        owners = [kb for kb in kbs if d.name in (f"{kb}-{m}" for m in suffixes)]
        if len(owners) == 1:
            cfg_file.write_text(json.dumps({**conf, "kb": owners[0]}, indent=2, sort_keys=True))
            out.append(d)
    return out
