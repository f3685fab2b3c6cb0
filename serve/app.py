"""The kira HTTP API (FastAPI). ``create_app(cfg)`` builds it; ``kira serve run`` serves it.

This module wires the app: state, lifespan (batcher, jobs, snapshot watcher), error handlers,
middleware and the routers of :mod:`kira.serve.routes` — ``qa`` (``/v1/ask``, ``/v1/search``),
``kb`` (``/v1/kb/...``), ``admin`` (``/v1/admin/...``) and ``ops`` (``/healthz``, ``/readyz``,
``/metrics``, the web page at ``/``); OpenAPI at ``/openapi.json`` and ``/docs``. Request bodies
live in :mod:`kira.serve.schemas`; everything kira-specific goes through :mod:`kira.serve.service`.
"""


import logging
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from kira import __version__
from kira.config import KiraConfig
from kira.errors import KiraError
from kira.serve import service
from kira.serve.batching import MicroBatcher
from kira.serve.jobs import JobManager
from kira.serve.metrics import Metrics, MetricsMiddleware
from kira.serve.routes import admin, kb, ops, qa
from kira.serve.schemas import Problem, request_models
from kira.serve.security import BodyLimitMiddleware
from kira.serve.snapshot import Snapshot, SnapshotHolder, probe_for
from kira.serve.state import ServerState
from kira.workspace import WorkspaceBusy

log = logging.getLogger("kira.serve")
STATIC_DIR = Path(__file__).parent / "static"

EngineLoader = Callable[[KiraConfig], Any]



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

    models = request_models(cfg)
    for routes in (qa, kb, admin, ops):
        app.include_router(routes.router(models))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
