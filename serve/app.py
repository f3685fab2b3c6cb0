"""The kira HTTP API (FastAPI). ``create_app(cfg)`` builds it; ``kira serve run`` serves it.

Routes: ``/v1/ask``, ``/v1/search``, ``/v1/kb/entities``, ``/v1/kb/link-predict``, admin jobs
under ``/v1/admin``, ``/healthz``, ``/readyz``, ``/metrics``, the web page at ``/``; OpenAPI at
``/openapi.json`` and ``/docs``. Everything kira-specific goes through :mod:`kira.serve.service`.
"""


import asyncio
import logging
import re
import shutil
import uuid
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.concurrency import run_in_threadpool

from kira import __version__
from kira.config import KiraConfig
from kira.errors import KiraError
from kira.kb.store import SourceNameError
from kira.serve import service
from kira.serve.batching import MicroBatcher
from kira.serve.jobs import Job, JobManager
from kira.serve.metrics import Metrics, MetricsMiddleware
from kira.serve.security import BodyLimitMiddleware, clean_text, secrets_match
from kira.serve.snapshot import Snapshot, SnapshotHolder, probe_for
from kira.workspace import WorkspaceBusy

log = logging.getLogger("kira.serve")
STATIC_DIR = Path(__file__).parent / "static"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FILENAME_RE = re.compile(r"[^A-Za-z0-9_.-]")

EngineLoader = Callable[[KiraConfig], Any]


@dataclass
class ServerState:
    """Everything a request handler may touch, hung on ``app.state.kira``."""

    cfg: KiraConfig
    workspace: service.Workspace
    holder: SnapshotHolder
    batcher: MicroBatcher
    jobs: JobManager
    metrics: Metrics


# ---- request / response models ------------------------------------------------------------------
class Problem(BaseModel):
    detail: Any


class EvidenceOut(BaseModel):
    id: str
    title: str = ""
    text: str = ""
    score: float | None = None
    kind: str = "passage"
    source: str = ""
    retriever: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class AskResponse(BaseModel):
    answer: str | None = Field(description="The answer text; null when the reader found none.")
    score: float | None = None
    no_answer: bool = False
    span: list[int] | None = Field(None, description="[start, end) character offsets into the answer's evidence text.")
    cells: list[list[int]] | None = Field(None, description="[row, column] of table cells the answer came from.")
    aggregation: str | None = None
    reader: str = ""
    retriever: str = ""
    answer_evidence_id: str | None = Field(None, description="Id of the evidence the span/cells refer to.")
    evidence: list[EvidenceOut] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, description="Seconds per stage.")
    index_version: str
    batch_size: int = 1


class SearchResponse(BaseModel):
    query: str
    method: str
    index_version: str
    hits: list[EvidenceOut]
    timings: dict[str, float] = Field(default_factory=dict)


class EntityOut(BaseModel):
    id: str
    kb: str
    name: str
    aliases: list[str] = Field(default_factory=list)
    description: str = ""


class EntitiesResponse(BaseModel):
    query: str
    entities: list[EntityOut]


class TailOut(BaseModel):
    id: str
    name: str
    score: float | None


class LinkPredictResponse(BaseModel):
    kb: str
    model: str
    head: str
    relation: str
    tails: list[TailOut]


class JobOut(BaseModel):
    id: str
    kind: str
    state: Literal["queued", "running", "succeeded", "failed"]
    progress: float
    stage: str
    error: str | None = None
    result: dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None


class KBPathRequest(BaseModel):
    """A KB already on the server, in one of ``serve.allowed_kb_dirs``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, pattern=NAME_RE.pattern)
    type: Literal[service.KB_TYPES]  # type: ignore[valid-type]
    paths: list[Annotated[str, Field(min_length=1, max_length=4096)]] = Field(min_length=1, max_length=64)
    embed: Literal[service.EMBED_MODELS] | None = Field(  # type: ignore[valid-type]
        None, description="Also train a KB embedding (for /v1/kb/link-predict).")
    replace: bool = Field(False, description="Replace an existing KB of this name read from other files.")


def _request_models(cfg: KiraConfig):
    """Request models whose limits come from config, so the OpenAPI spec states the real limits."""
    sc = cfg.serve
    Question = Annotated[str, Field(min_length=1, max_length=sc.max_question_chars)]
    K = Annotated[int, Field(strict=True, ge=1, le=sc.max_k)]

    def _check(v: str, info) -> str:
        return clean_text(v, info.field_name, sc.max_question_chars)

    class AskRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        question: Question
        k: K = Field(10, description="Evidence passages retrieved for the reader.")
        sources: Literal[service.SOURCES] = "all"  # type: ignore[valid-type]
        reader: Literal[service.READERS] = "extractive"  # type: ignore[valid-type]
        method: Literal[service.METHODS] | None = Field(  # type: ignore[valid-type]
            None, description="Retrieval method; default from the workspace config.")
        _v = field_validator("question")(_check)

    class SearchRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        query: Question
        k: K = 10
        method: Literal[service.METHODS] = "hybrid"  # type: ignore[valid-type]
        _v = field_validator("query")(_check)

    class LinkPredictRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kb: str = Field(min_length=1, max_length=64, pattern=NAME_RE.pattern)
        head: Annotated[str, Field(min_length=1, max_length=500)]
        relation: Annotated[str, Field(min_length=1, max_length=500)]
        k: K = 10
        _v = field_validator("head", "relation")(lambda v, info: clean_text(v, info.field_name, 500))

    return AskRequest, SearchRequest, LinkPredictRequest


# ---- auth ---------------------------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="Admin token (serve.admin_token / KIRA_ADMIN_TOKEN).")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="API key, required only when serve.api_key / KIRA_API_KEY is set.")


def require_admin(request: Request,
                  creds: HTTPAuthorizationCredentials | None = Security(_bearer)) -> None:
    """Admin endpoints need the bearer admin token; with no token configured they are off."""
    token = request.app.state.kira.cfg.serve.admin_token
    if not token:
        raise HTTPException(403, "admin API disabled: set serve.admin_token or KIRA_ADMIN_TOKEN")
    if creds is None or not secrets_match(creds.credentials, token):
        raise HTTPException(401, "admin endpoints need 'Authorization: Bearer <admin token>'",
                            headers={"WWW-Authenticate": "Bearer"})


def require_api_key(request: Request, key: str | None = Security(_api_key)) -> None:
    expected = request.app.state.kira.cfg.serve.api_key
    if expected and not secrets_match(key, expected):
        raise HTTPException(401, "missing or wrong X-API-Key header")


# ---- the app ------------------------------------------------------------------------------------
def create_app(cfg: KiraConfig, engine_loader: EngineLoader | None = None,
               watch: bool = True) -> FastAPI:
    """Build the app for a workspace. ``engine_loader(cfg)`` defaults to the QA pipeline."""
    sc = cfg.serve
    loader = engine_loader or service.load_engine
    metrics = Metrics()
    workspace = service.Workspace(cfg)

    def on_swap(old: Snapshot | None, new: Snapshot) -> None:
        metrics.set_version(old.version if old else None, new.version)

    holder = SnapshotHolder(lambda: loader(cfg), probe_for(cfg.indexes_dir), on_swap)

    def run_batch(key, payloads: list[tuple[Snapshot, str]]) -> list[dict[str, Any]]:
        _, k, sources, reader, method = key
        snap = payloads[0][0]
        return snap.engine.ask_batch([q for _, q in payloads], k=k, sources=sources, reader=reader,
                                     method=method)

    batcher = MicroBatcher(run_batch, max_batch=sc.max_batch, max_wait_ms=sc.max_wait_ms,
                           on_batch=lambda n, _s: metrics.batch_size.observe(n))
    jobs = JobManager()
    state = ServerState(cfg, workspace, holder, batcher, jobs, metrics)
    AskRequest, SearchRequest, LinkPredictRequest = _request_models(cfg)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        jobs.start()
        # load the first snapshot off the event loop: /healthz answers at once, /readyz once loaded
        holder.start_watcher(sc.watch_interval_s if watch else 0)
        try:
            yield
        finally:
            holder.stop()
            jobs.stop()
            await batcher.stop()
            workspace.close()

    app = FastAPI(title="kira", version=__version__, lifespan=lifespan,
                  description="Knowledge-Injected Retrieval-Augmented QA over text, KBs and tables.",
                  responses={401: {"model": Problem}, 422: {"model": Problem}})
    app.state.kira = state

    # ---- errors: always a JSON body with a message, never a bare 500 for bad input ----
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            msg = "; ".join(str(e.get("ctx", {}).get("error", e.get("msg"))) for e in errors)
            return JSONResponse({"detail": f"malformed JSON body: {msg}"}, status_code=400)
        detail = [{"loc": [str(x) for x in e.get("loc", ())], "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in errors]
        summary = "; ".join(f"{'.'.join(d['loc'])}: {d['msg']}" for d in detail)
        return JSONResponse({"detail": detail, "message": summary}, status_code=422)

    @app.exception_handler(service.NotReady)
    async def _not_ready(request: Request, exc: service.NotReady):
        return JSONResponse({"detail": f"not ready: {exc}"}, status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(service.NotFound)
    async def _not_found(request: Request, exc: service.NotFound):
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(KiraError)
    async def _kira_error(request: Request, exc: KiraError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(WorkspaceBusy)
    async def _busy(request: Request, exc: WorkspaceBusy):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    app.add_middleware(BodyLimitMiddleware, max_body=sc.max_body_bytes, max_upload=sc.max_upload_bytes)
    if sc.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(sc.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    # added last = outermost: it also counts the 413s and CORS refusals the middlewares above send
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=app.router.routes)

    # ---- question answering ----
    @app.post("/v1/ask", response_model=AskResponse, dependencies=[Depends(require_api_key)],
              responses={503: {"model": Problem}, 504: {"model": Problem}}, tags=["qa"])
    async def ask(req: AskRequest) -> JSONResponse:
        """Answer a question with its evidence, per-stage timings and the index version used."""
        snap = holder.get()  # taken once: this request finishes on this snapshot whatever swaps
        key = (id(snap), req.k, req.sources, req.reader, req.method)
        try:
            result, waited, batch = await asyncio.wait_for(batcher.submit(key, (snap, req.question)),
                                                           sc.request_timeout_s)
        except TimeoutError:
            raise HTTPException(504, f"no answer within {sc.request_timeout_s:g}s") from None
        out = dict(result)
        out["timings"] = {**out.get("timings", {}), "queue": waited}
        out["batch_size"] = batch
        out["index_version"] = snap.version
        metrics.observe_stages(out["timings"])
        return JSONResponse(out)  # already normalised to AskResponse's shape; skip re-validation per request

    @app.post("/v1/search", response_model=SearchResponse, dependencies=[Depends(require_api_key)],
              responses={503: {"model": Problem}, 504: {"model": Problem}}, tags=["qa"])
    async def search(req: SearchRequest) -> JSONResponse:
        """Retrieval only: ranked evidence from BM25, dense or hybrid search."""
        import time

        snap = holder.get()
        t0 = time.perf_counter()
        try:
            hits = await asyncio.wait_for(batcher.run(snap.engine.search, req.query, req.k, req.method),
                                          sc.request_timeout_s)
        except TimeoutError:
            raise HTTPException(504, f"no results within {sc.request_timeout_s:g}s") from None
        elapsed = time.perf_counter() - t0
        metrics.observe_stages({"search": elapsed})
        return JSONResponse({"query": req.query, "method": req.method, "index_version": snap.version,
                             "hits": hits, "timings": {"search": elapsed}})

    @app.get("/v1/kb/entities", response_model=EntitiesResponse, dependencies=[Depends(require_api_key)],
             tags=["kb"])
    async def entities(q: Annotated[str, Query(min_length=1, max_length=200, description="Name or alias")],
                       kb: Annotated[str | None, Query(max_length=64, pattern=NAME_RE.pattern)] = None,
                       limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
        """Entities whose name or alias matches ``q`` (exact first, then prefix)."""
        try:
            text = clean_text(q, "q", 200)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        found = await run_in_threadpool(workspace.find_entities, text, kb, limit)
        return {"query": text, "entities": found}

    @app.post("/v1/kb/link-predict", response_model=LinkPredictResponse,
              dependencies=[Depends(require_api_key)], responses={404: {"model": Problem}}, tags=["kb"])
    async def link_predict(req: LinkPredictRequest) -> dict[str, Any]:
        """Rank tail entities for (head, relation, ?) with the KB's trained embedding model."""
        return await run_in_threadpool(workspace.link_predict, req.kb, req.head, req.relation, req.k)

    # ---- admin ----
    def _reload_after(job: Job, base: float, full: bool = False) -> dict[str, Any]:
        job.report(base, "indexing")
        version = workspace.build_and_publish(full=full)
        job.report(0.9, "loading snapshot")
        snap = holder.reload()
        if snap is None or snap.version != version:
            raise KiraError(f"published {version} but could not load it: {holder.last_error}")
        return {"index_version": version}

    def _record(job_fn):
        def wrapped(job: Job):
            try:
                out = job_fn(job)
            except BaseException:
                metrics.jobs.labels(kind=job.kind, state="failed").inc()
                raise
            metrics.jobs.labels(kind=job.kind, state="succeeded").inc()
            return out
        return wrapped

    kb_body = {
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": KBPathRequest.model_json_schema()},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["name", "type", "files"],
                "properties": {"name": {"type": "string", "pattern": NAME_RE.pattern},
                               "type": {"type": "string", "enum": list(service.KB_TYPES)},
                               "embed": {"type": "string", "enum": list(service.EMBED_MODELS)},
                               "replace": {"type": "boolean"},
                               "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        }}}

    @app.post("/v1/admin/knowledge-bases", status_code=202, response_model=JobOut,
              dependencies=[Depends(require_admin)], openapi_extra=kb_body,
              responses={400: {"model": Problem}, 403: {"model": Problem}, 413: {"model": Problem}},
              tags=["admin"])
    async def add_kb(request: Request) -> dict[str, Any]:
        """Plug in a KB (upload or server-side path): validated, ingested, verbalized, indexed, swapped in."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        upload_dir: Path | None = None
        embed: str | None = None
        replace = False
        if ctype == "multipart/form-data":
            name, kb_type, paths, upload_dir, embed, replace = await _save_upload(request)
        elif ctype == "application/json":
            try:
                body = KBPathRequest.model_validate_json(await request.body())
            except ValidationError as e:
                msg = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'body'}: {x['msg']}" for x in e.errors())
                raise HTTPException(422, msg) from None
            name, kb_type, embed, replace = body.name, body.type, body.embed, body.replace
            try:
                paths = [service.confine_path(p, sc.allowed_kb_dirs) for p in body.paths]
            except PermissionError as e:
                raise HTTPException(403, str(e)) from None
            except FileNotFoundError as e:
                raise HTTPException(404, str(e)) from None
        else:
            raise HTTPException(415, "send application/json {name, type, paths} or multipart/form-data "
                                     "with fields name, type and files")
        try:  # refuse a taken name now (409) rather than in a job that fails later
            await run_in_threadpool(workspace.claim_kb_name, name, paths, replace)
        except SourceNameError as e:
            if upload_dir is not None:
                shutil.rmtree(upload_dir, ignore_errors=True)
            raise HTTPException(409, str(e)) from None

        def run(job: Job) -> dict[str, Any]:
            job.report(0.05, "validating and ingesting")
            try:
                report = workspace.add_kb(name, kb_type, paths, replace=replace)
            except BaseException:
                if upload_dir is not None:  # a rejected upload leaves nothing behind
                    shutil.rmtree(upload_dir, ignore_errors=True)
                raise
            extra = {}
            if embed:
                job.report(0.25, f"training {embed} embedding")
                extra["embedding"] = workspace.embed_kb(name, embed)
            out = _reload_after(job, 0.4)
            return {"kb": name, "report": report, **extra, **out}

        job = jobs.submit("add-kb", {"name": name, "type": kb_type, "paths": [str(p) for p in paths],
                                     "embed": embed},
                          _record(run))
        return job.to_dict()

    async def _save_upload(request: Request) -> tuple[str, str, list[Path], Path, str | None, bool]:
        """Stream uploaded files into ``<workspace>/uploads/<id>/`` (the body limit caps their size)."""
        form = await request.form(max_files=64, max_fields=16)
        name, kb_type, embed = form.get("name"), form.get("type"), form.get("embed") or None
        replace = str(form.get("replace") or "").lower() in ("1", "true", "yes", "on")
        if embed is not None and embed not in service.EMBED_MODELS:
            raise HTTPException(422, f"embed: must be one of {', '.join(service.EMBED_MODELS)}")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise HTTPException(422, f"name: must match {NAME_RE.pattern}")
        if kb_type not in service.KB_TYPES:
            raise HTTPException(422, f"type: must be one of {', '.join(service.KB_TYPES)}")
        files = [f for f in form.getlist("files") if hasattr(f, "filename") and hasattr(f, "read")]
        if not files:
            raise HTTPException(422, "files: at least one file is required")
        dest = cfg.workspace / "uploads" / f"{name}-{uuid.uuid4().hex[:8]}"
        dest.mkdir(parents=True, exist_ok=True)
        saved: list[Path] = []
        try:
            for f in files:
                fname = FILENAME_RE.sub("_", Path(f.filename or "upload").name).lstrip(".") or "upload"
                target = dest / fname
                with target.open("wb") as out:
                    while chunk := await f.read(1 << 20):
                        out.write(chunk)
                saved.append(target)
        except Exception:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        # directory-shaped sources (pykeen splits, WordNet) take the folder, file-shaped take files
        return name, str(kb_type), ([dest] if kb_type in ("pykeen", "wordnet") else saved), dest, embed, replace

    @app.get("/v1/admin/knowledge-bases", dependencies=[Depends(require_admin)], tags=["admin"])
    async def list_kbs() -> dict[str, Any]:
        """The KBs in the store."""
        return {"knowledge_bases": await run_in_threadpool(workspace.list_kbs)}

    @app.delete("/v1/admin/knowledge-bases/{name}", status_code=202, response_model=JobOut,
                dependencies=[Depends(require_admin)], responses={404: {"model": Problem}, 409: {"model": Problem}},
                tags=["admin"])
    async def delete_kb(name: Annotated[str, PathParam(max_length=64, pattern=NAME_RE.pattern)]) -> dict[str, Any]:
        """Remove a KB (facts, passages, embeddings) and publish an index without it; never a text source or table."""
        try:
            if not await run_in_threadpool(workspace.has_kb, name):
                raise HTTPException(404, f"no knowledge base named {name!r}")
        except SourceNameError as e:
            raise HTTPException(409, str(e)) from None

        def run(job: Job) -> dict[str, Any]:
            job.report(0.05, "removing")
            workspace.remove_kb(name)
            return {"kb": name, **_reload_after(job, 0.3)}

        return jobs.submit("remove-kb", {"name": name}, _record(run)).to_dict()

    @app.post("/v1/admin/reindex", status_code=202, response_model=JobOut,
              dependencies=[Depends(require_admin)], tags=["admin"])
    async def reindex() -> dict[str, Any]:
        """Rebuild the index from every store passage, publish it and swap it in."""
        return jobs.submit("reindex", {}, _record(lambda job: _reload_after(job, 0.05, full=True))).to_dict()

    @app.get("/v1/admin/jobs/{job_id}", response_model=JobOut, dependencies=[Depends(require_admin)],
             responses={404: {"model": Problem}}, tags=["admin"])
    async def get_job(job_id: Annotated[str, PathParam(max_length=64)]) -> dict[str, Any]:
        """State, progress (0..1), stage and error of a job."""
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job.to_dict()

    @app.get("/v1/admin/jobs", response_model=list[JobOut], dependencies=[Depends(require_admin)],
             tags=["admin"])
    async def list_jobs() -> list[dict[str, Any]]:
        return [j.to_dict() for j in jobs.list()]

    # ---- operations ----
    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"model": Problem}})
    async def readyz() -> JSONResponse:
        """Ready once an index version is loaded."""
        snap = holder.current
        if snap is None:
            return JSONResponse({"ready": False, "index_version": None, "error": holder.last_error},
                                status_code=503)
        return JSONResponse({"ready": True, "index_version": snap.version, "swaps": holder.swaps})

    @app.get("/metrics", tags=["ops"], response_class=Response)
    async def prometheus() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ---- the web page ----
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
