"""A networkx view of a KB in the store, with fast structural sampling.

Entities become nodes (with ``name``/``description``/``text``), triples become typed edges of a
``MultiDiGraph``. Alongside the networkx graph we keep integer edge arrays and a symmetric sparse
adjacency (scipy CSR), because the hot paths (personalised PageRank for many targets, k-hop
neighbourhoods, WL colours) are vectorised over those, not run through networkx per query.

Views are cached per (store, KB, split, store version of the KB): an in-memory LRU plus a pickle
on disk (``models/graph-cache/``), so a 100k-node graph is built once, not once per question.
"""

from __future__ import annotations

import hashlib
import pickle
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp

from kira.artifacts import role_dir
from kira.errors import KiraError


@dataclass
class GraphView:
    """One KB as a graph. Node ``i`` is entity ``node_ids[i]``; edge ``e`` is
    ``(heads[e], rels[e], tails[e])`` with relation id ``relation_ids[rels[e]]``."""

    kb: str
    node_ids: list[str]
    names: list[str]
    descriptions: list[str]
    relation_ids: list[str]
    relation_names: list[str]
    heads: np.ndarray
    rels: np.ndarray
    tails: np.ndarray
    key: str = ""
    _graph: nx.MultiDiGraph | None = field(default=None, repr=False)
    _adj: sp.csr_matrix | None = field(default=None, repr=False)
    _index: dict[str, int] | None = field(default=None, repr=False)
    _incident: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _wl: np.ndarray | None = field(default=None, repr=False)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_records(cls, kb: str, entities: Iterable[tuple[str, str, str]],
                     triples: Iterable[tuple[str, str, str]],
                     relations: Iterable[tuple[str, str]] = (), key: str = "") -> GraphView:
        """Build from ``(id, name, description)`` entities and ``(head, relation, tail)`` triples.

        Triples may mention ids missing from ``entities`` (a KB loaded from bare triples); those
        become nodes named by their id so no edge is silently dropped.
        """
        node_ids: list[str] = []
        names: list[str] = []
        descs: list[str] = []
        index: dict[str, int] = {}
        for eid, name, desc in entities:
            if eid in index:
                continue
            index[eid] = len(node_ids)
            node_ids.append(eid)
            names.append(name or eid)
            descs.append(desc or "")
        rel_index: dict[str, int] = {}
        rel_ids: list[str] = []
        rel_names: list[str] = []
        for rid, rname in relations:
            if rid not in rel_index:
                rel_index[rid] = len(rel_ids)
                rel_ids.append(rid)
                rel_names.append(rname or rid)
        h_l: list[int] = []
        r_l: list[int] = []
        t_l: list[int] = []
        for h, r, t in triples:
            for x in (h, t):
                if x not in index:
                    index[x] = len(node_ids)
                    node_ids.append(x)
                    names.append(x)
                    descs.append("")
            if r not in rel_index:
                rel_index[r] = len(rel_ids)
                rel_ids.append(r)
                rel_names.append(r)
            h_l.append(index[h])
            r_l.append(rel_index[r])
            t_l.append(index[t])
        return cls(kb=kb, node_ids=node_ids, names=names, descriptions=descs, relation_ids=rel_ids,
                   relation_names=rel_names, heads=np.asarray(h_l, dtype=np.int64),
                   rels=np.asarray(r_l, dtype=np.int64), tails=np.asarray(t_l, dtype=np.int64),
                   key=key, _index=index)

    @classmethod
    def from_store(cls, store, kb: str, splits: Sequence[str] | None = None, key: str = "") -> GraphView:
        """Read one KB (optionally only some triple splits, e.g. ``("train",)``) from the store."""
        if kb not in store.list_kbs() and not any(True for _ in store.iter_triples(kb=kb)):
            raise KiraError(f"no KB named {kb!r} in the store (known: {', '.join(store.list_kbs()) or 'none'})")
        ents = ((e.id, e.name, e.description) for e in store.iter_entities(kb))
        rels = [(r.id, r.name) for r in store.list_relations(kb)]
        wanted = set(splits) if splits else None
        trips = ((t.head, t.relation, t.tail) for t in store.iter_triples(kb=kb)
                 if wanted is None or t.split in wanted)
        return cls.from_records(kb, ents, trips, rels, key=key)

    # ---- basic accessors ----------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_edges(self) -> int:
        return int(len(self.heads))

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {n: i for i, n in enumerate(self.node_ids)}
        return self._index

    def text(self, i: int) -> str:
        """Node text for encoders: ``name: description`` (the gloss for WordNet)."""
        d = self.descriptions[i]
        return f"{self.names[i]}: {d}" if d else self.names[i]

    def texts(self, nodes: Iterable[int] | None = None) -> list[str]:
        return [self.text(i) for i in (range(self.n_nodes) if nodes is None else nodes)]

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The networkx graph (built lazily: the structural hot paths do not need it)."""
        if self._graph is None:
            g = nx.MultiDiGraph(kb=self.kb)
            for i, nid in enumerate(self.node_ids):
                g.add_node(nid, name=self.names[i], description=self.descriptions[i], index=i)
            for h, r, t in zip(self.heads.tolist(), self.rels.tolist(), self.tails.tolist(), strict=True):
                g.add_edge(self.node_ids[h], self.node_ids[t], key=self.relation_ids[r],
                           relation=self.relation_ids[r], relation_name=self.relation_names[r])
            self._graph = g
        return self._graph

    @property
    def adjacency(self) -> sp.csr_matrix:
        """Symmetric 0/1 adjacency (direction and relation type dropped, self-loops removed)."""
        if self._adj is None:
            n = self.n_nodes
            keep = self.heads != self.tails
            rows = np.concatenate([self.heads[keep], self.tails[keep]])
            cols = np.concatenate([self.tails[keep], self.heads[keep]])
            a = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, n))
            a.data[:] = 1.0  # duplicates summed above; binarise
            self._adj = a
        return self._adj

    def neighbors(self, i: int) -> np.ndarray:
        a = self.adjacency
        return a.indices[a.indptr[i]:a.indptr[i + 1]]

    def degree(self) -> np.ndarray:
        return np.diff(self.adjacency.indptr)

    def incident_edges(self, i: int) -> np.ndarray:
        """Ids of edges with node ``i`` as head or tail (sorted)."""
        if self._incident is None:
            ends = np.concatenate([self.heads, self.tails])
            eids = np.concatenate([np.arange(self.n_edges), np.arange(self.n_edges)])
            order = np.argsort(ends, kind="stable")
            ptr = np.zeros(self.n_nodes + 1, dtype=np.int64)
            np.add.at(ptr, ends + 1, 1)
            self._incident = (np.cumsum(ptr), eids[order])
        ptr, eids = self._incident
        return np.unique(eids[ptr[i]:ptr[i + 1]])

    def triple(self, e: int) -> tuple[str, str, str]:
        return (self.node_ids[self.heads[e]], self.relation_ids[self.rels[e]], self.node_ids[self.tails[e]])

    def subgraph(self, nodes: Iterable[int]) -> nx.MultiDiGraph:
        return self.graph.subgraph([self.node_ids[i] for i in nodes]).copy()

    # ---- sampling -----------------------------------------------------------------------------
    def ppr(self, targets: Sequence[int], alpha: float = 0.15, iters: int = 30,
            batch_size: int = 512) -> np.ndarray:
        """Personalised PageRank vectors, one column per target: ``[n_nodes, len(targets)]``.

        Batched sparse power iteration ``R <- alpha*E + (1-alpha) * A D^-1 R`` (all targets of a
        batch move together through one sparse-dense product). Dangling nodes keep their mass.
        """
        return ppr_matrix(self.adjacency, targets, alpha=alpha, iters=iters, batch_size=batch_size)

    def ppr_context(self, targets: Sequence[int], k: int, alpha: float = 0.15, iters: int = 30,
                    batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` nodes by PPR for each target, target excluded: ``(nodes [T,k], scores [T,k])``.

        Rows are sorted by descending score (ties by node index); missing slots are ``-1``/``0``.
        """
        targets = np.asarray(targets, dtype=np.int64)
        out_n = np.full((len(targets), k), -1, dtype=np.int64)
        out_s = np.zeros((len(targets), k), dtype=np.float32)
        for s in range(0, len(targets), batch_size):
            tb = targets[s:s + batch_size]
            r = self.ppr(tb, alpha=alpha, iters=iters, batch_size=batch_size)
            r[tb, np.arange(len(tb))] = -1.0  # exclude self
            for j in range(len(tb)):
                col = r[:, j]
                cand = np.flatnonzero(col > 0)
                if len(cand) > k:
                    cand = cand[np.argpartition(-col[cand], k - 1)[:k]]
                cand = cand[np.lexsort((cand, -col[cand]))]
                out_n[s + j, :len(cand)] = cand
                out_s[s + j, :len(cand)] = col[cand]
        return out_n, out_s

    def k_hop(self, sources: Sequence[int], k: int, max_nodes: int | None = None) -> dict[int, int]:
        """Nodes within ``k`` undirected hops of ``sources`` → hop distance (BFS over the CSR)."""
        dist: dict[int, int] = {int(s): 0 for s in sources}
        frontier = np.unique(np.asarray(list(dist), dtype=np.int64))
        a = self.adjacency
        for hop in range(1, k + 1):
            if not len(frontier):
                break
            nb = np.unique(np.concatenate([a.indices[a.indptr[i]:a.indptr[i + 1]] for i in frontier]))
            new = [int(x) for x in nb if int(x) not in dist]
            for x in new:
                dist[x] = hop
                if max_nodes and len(dist) >= max_nodes:
                    return dist
            frontier = np.asarray(new, dtype=np.int64)
        return dist

    def hop_distances(self, source: int, targets: Sequence[int], max_hops: int = 6) -> np.ndarray:
        """Undirected hop distance from ``source`` to each target, capped at ``max_hops + 1``."""
        dist = self.k_hop([source], max_hops)
        return np.asarray([dist.get(int(t), max_hops + 1) for t in targets], dtype=np.int64)

    def wl_colors(self, max_iter: int = 10) -> np.ndarray:
        """Weisfeiler-Lehman role ids of all nodes (cached)."""
        if self._wl is None:
            self._wl = wl_colors(self.adjacency, max_iter=max_iter)
        return self._wl

    def stats(self) -> dict[str, Any]:
        deg = self.degree()
        n_cc = sp.csgraph.connected_components(self.adjacency, directed=False)[0] if self.n_nodes else 0
        return {"kb": self.kb, "nodes": self.n_nodes, "edges": self.n_edges,
                "relations": len(self.relation_ids), "components": int(n_cc),
                "mean_degree": float(deg.mean()) if self.n_nodes else 0.0,
                "max_degree": int(deg.max()) if self.n_nodes else 0,
                "isolated": int((deg == 0).sum())}

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_graph"] = None  # rebuilt lazily; the arrays are the source of truth
        return state


# ---- structural kernels -------------------------------------------------------------------------
def _transition(adj: sp.csr_matrix) -> sp.csr_matrix:
    """Column-stochastic ``A D^-1``; a dangling column gets a self-loop so mass is conserved."""
    n = adj.shape[0]
    deg = np.asarray(adj.sum(axis=0)).ravel()
    dangling = deg == 0
    a = adj + sp.diags(dangling.astype(np.float32), format="csr")
    deg = np.where(dangling, 1.0, deg)
    return (a @ sp.diags((1.0 / deg).astype(np.float32))).tocsr().astype(np.float32) if n else a


def ppr_matrix(adj: sp.csr_matrix, targets: Sequence[int], alpha: float = 0.15, iters: int = 30,
               batch_size: int = 512, device: str = "auto") -> np.ndarray:
    """PPR columns for ``targets`` via batched sparse power iteration (see ``GraphView.ppr``).

    On a CUDA machine (``device="auto"``) the iteration runs as torch sparse-dense products on the
    GPU; otherwise scipy on the CPU. Both stop early once a batch has converged."""
    targets = np.asarray(targets, dtype=np.int64)
    n = adj.shape[0]
    w = _transition(adj)
    out = np.zeros((n, len(targets)), dtype=np.float32)
    gpu = None
    if n and device != "cpu":
        from kira.plm.device import pick_device

        dev = pick_device(device)
        if dev.type == "cuda":
            import torch

            coo = w.tocoo()
            gpu = (torch, dev, torch.sparse_coo_tensor(np.vstack([coo.row, coo.col]), coo.data, (n, n),
                                                      device=dev).to_sparse_csr())
    for s in range(0, len(targets), batch_size):
        tb = targets[s:s + batch_size]
        if gpu is not None:
            torch, dev, wt = gpu
            e = torch.zeros((n, len(tb)), device=dev)
            e[torch.as_tensor(tb, device=dev), torch.arange(len(tb), device=dev)] = 1.0
            r = e.clone()
            for _ in range(iters):
                nxt = alpha * e + (1 - alpha) * (wt @ r)
                done = float((nxt - r).abs().max()) < 1e-7
                r = nxt
                if done:
                    break
            out[:, s:s + len(tb)] = r.cpu().numpy()
            continue
        e = np.zeros((n, len(tb)), dtype=np.float32)
        e[tb, np.arange(len(tb))] = 1.0
        r = e.copy()
        for _ in range(iters):
            nxt = alpha * e + (1 - alpha) * (w @ r)
            done = np.abs(nxt - r).max() < 1e-7
            r = nxt
            if done:
                break
        out[:, s:s + len(tb)] = r
    return out


def wl_colors(adj: sp.csr_matrix, max_iter: int = 10) -> np.ndarray:
    """Weisfeiler-Lehman colour refinement: start uniform, refine each node's colour by the
    multiset of its neighbours' colours until the partition stops changing. Colours are compact
    ints assigned in order of first appearance of each signature sorted canonically, so the same
    graph always yields the same ids (Graph-BERT's WL role code)."""
    n = adj.shape[0]
    colors = np.zeros(n, dtype=np.int64)
    for _ in range(max_iter):
        sigs = []
        for i in range(n):
            nb = colors[adj.indices[adj.indptr[i]:adj.indptr[i + 1]]]
            sigs.append((int(colors[i]), tuple(sorted(nb.tolist()))))
        table = {s: c for c, s in enumerate(sorted(set(sigs)))}
        new = np.asarray([table[s] for s in sigs], dtype=np.int64)
        if len(table) == len(np.unique(colors)):
            return new
        colors = new
    return colors


# ---- cache --------------------------------------------------------------------------------------
_LRU: OrderedDict[str, GraphView] = OrderedDict()
LRU_SIZE = 4


def store_key(store, kb: str, splits: Sequence[str] | None) -> str:
    """Identity of a KB's content: its source checksum, version and record counts. Not the store's
    path: each index version reads its own store snapshot, and an unchanged KB keeps its cache."""
    src = store.get_source(kb)
    version = src["version"] if src else 0
    added = f"{src['added_at']}|{src['checksum']}" if src else ""
    counts = store.kb_counts(kb)
    raw = f"{kb}|{version}|{added}|{counts['triples']}|{counts['entities']}|{','.join(sorted(splits or []))}"
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def load_view(store, kb: str, splits: Sequence[str] | None = None,
              cache_dir: str | Path | None = None) -> GraphView:
    """The graph view of ``kb``: from the memory LRU, else the disk pickle, else built and cached.

    A re-ingested KB gets a new source version, so stale views are never returned.
    """
    key = store_key(store, kb, splits)
    if key in _LRU:
        _LRU.move_to_end(key)
        return _LRU[key]
    view = None
    stem = f"{_safe(kb)}-{'+'.join(sorted(splits)) if splits else 'all'}"
    path = Path(cache_dir) / f"{stem}-{key}.pkl" if cache_dir else None
    if path is not None and path.exists():
        with path.open("rb") as f:
            view = pickle.load(f)
    if view is None:
        view = GraphView.from_store(store, kb, splits=splits, key=key)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            for old in path.parent.glob(f"{stem}-*.pkl"):
                old.unlink(missing_ok=True)  # one cached version per KB and split set
            tmp = path.with_suffix(".tmp")
            with tmp.open("wb") as f:
                pickle.dump(view, f, protocol=pickle.HIGHEST_PROTOCOL)
            tmp.replace(path)
    _LRU[key] = view
    while len(_LRU) > LRU_SIZE:
        _LRU.popitem(last=False)
    return view


def cache_dir_for(cfg) -> Path:
    """Where a workspace keeps pickled graph views."""
    return role_dir(cfg.models_dir, "graph-cache")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
