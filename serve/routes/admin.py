"""Admin jobs: plug KBs in and out, reindex, follow jobs (bearer admin token)."""

import shutil
import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from kira.errors import KiraError
from kira.kb.store import SourceNameError
from kira.serve import service
from kira.serve.jobs import Job
from kira.serve.routes import StateDep
from kira.serve.schemas import FILENAME_RE, NAME_RE, JobOut, Problem, RequestModels
from kira.serve.security import require_admin


def router(models: RequestModels) -> APIRouter:
    """The routes, with request bodies whose limits come from the app's config."""
    router = APIRouter()

    def _reload_after(st, job: Job, base: float, full: bool = False) -> dict[str, Any]:
        """Publish the store's passages (incrementally unless ``full``) and swap the server to them."""
        job.report(base, "indexing")
        version = st.workspace.build_and_publish(full=full)
        job.report(0.9, "loading snapshot")
        snap = st.holder.reload()
        if snap is None or snap.version != version:
            raise KiraError(f"published {version} but could not load it: {st.holder.last_error}")
        return {"index_version": version}

    def _record(st, job_fn):
        """Count the job's outcome in the metrics."""
        def wrapped(job: Job):
            try:
                out = job_fn(job)
            except BaseException:
                st.metrics.jobs.labels(kind=job.kind, state="failed").inc()
                raise
            st.metrics.jobs.labels(kind=job.kind, state="succeeded").inc()
            return out
        return wrapped

    kb_body = {
        "requestBody": {"required": True, "content": {
            "application/json": {"schema": models.kb_path.model_json_schema()},
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["name", "type", "files"],
                "properties": {"name": {"type": "string", "pattern": NAME_RE.pattern},
                               "type": {"type": "string", "enum": list(models.kb_types)},
                               "embed": {"type": "string", "enum": list(service.EMBED_MODELS)},
                               "replace": {"type": "boolean"},
                               "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}},
        }}}

    @router.post("/v1/admin/knowledge-bases", status_code=202, response_model=JobOut,
              dependencies=[Depends(require_admin)], openapi_extra=kb_body,
              responses={400: {"model": Problem}, 403: {"model": Problem}, 413: {"model": Problem}},
              tags=["admin"])
    async def add_kb(request: Request, st: StateDep) -> dict[str, Any]:
        """Plug in a KB (upload or server-side path): validated, ingested, verbalized, indexed, swapped in."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        upload_dir: Path | None = None
        embed: str | None = None
        replace = False
        if ctype == "multipart/form-data":
            name, kb_type, paths, upload_dir, embed, replace = await _save_upload(request, st)
        elif ctype == "application/json":
            try:
                body = models.kb_path.model_validate_json(await request.body())
            except ValidationError as e:
                msg = "; ".join(f"{'.'.join(map(str, x['loc'])) or 'body'}: {x['msg']}" for x in e.errors())
                raise HTTPException(422, msg) from None
            name, kb_type, embed, replace = body.name, body.type, body.embed, body.replace
            try:
                paths = [service.confine_path(p, st.cfg.serve.allowed_kb_dirs) for p in body.paths]
            except PermissionError as e:
                raise HTTPException(403, str(e)) from None
            except FileNotFoundError as e:
                raise HTTPException(404, str(e)) from None
        else:
            raise HTTPException(415, "send application/json {name, type, paths} or multipart/form-data "
                                     "with fields name, type and files")
        try:  # refuse a taken name now (409) rather than in a job that fails later
            await run_in_threadpool(st.workspace.claim_kb_name, name, paths, replace)
        except SourceNameError as e:
            if upload_dir is not None:
                shutil.rmtree(upload_dir, ignore_errors=True)
            raise HTTPException(409, str(e)) from None

        def run(job: Job) -> dict[str, Any]:
            job.report(0.05, "validating and ingesting")
            try:
                report = st.workspace.add_kb(name, kb_type, paths, replace=replace)
            except BaseException:
                if upload_dir is not None:  # a rejected upload leaves nothing behind
                    shutil.rmtree(upload_dir, ignore_errors=True)
                raise
            extra = {}
            if embed:
                job.report(0.25, f"training {embed} embedding")
                extra["embedding"] = st.workspace.embed_kb(name, embed)
            out = _reload_after(st, job, 0.4)
            return {"kb": name, "report": report, **extra, **out}

        job = st.jobs.submit("add-kb", {"name": name, "type": kb_type, "paths": [str(p) for p in paths],
                                     "embed": embed},
                          _record(st, run))
        return job.to_dict()

    async def _save_upload(request: Request, st) -> tuple[str, str, list[Path], Path, str | None, bool]:
        """Stream uploaded files into ``<workspace>/uploads/<id>/`` (the body limit caps their size)."""
        form = await request.form(max_files=64, max_fields=16)
        name, kb_type, embed = form.get("name"), form.get("type"), form.get("embed") or None
        replace = str(form.get("replace") or "").lower() in ("1", "true", "yes", "on")
        if embed is not None and embed not in service.EMBED_MODELS:
            raise HTTPException(422, f"embed: must be one of {', '.join(service.EMBED_MODELS)}")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise HTTPException(422, f"name: must match {NAME_RE.pattern}")
        if kb_type not in models.kb_types:
            raise HTTPException(422, f"type: must be one of {', '.join(models.kb_types)}")
        files = [f for f in form.getlist("files") if hasattr(f, "filename") and hasattr(f, "read")]
        if not files:
            raise HTTPException(422, "files: at least one file is required")
        dest = st.cfg.workspace / "uploads" / f"{name}-{uuid.uuid4().hex[:8]}"
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

    @router.get("/v1/admin/knowledge-bases", dependencies=[Depends(require_admin)], tags=["admin"])
    async def list_kbs(st: StateDep) -> dict[str, Any]:
        """The KBs in the store."""
        return {"knowledge_bases": await run_in_threadpool(st.workspace.list_kbs)}

    @router.delete("/v1/admin/knowledge-bases/{name}", status_code=202, response_model=JobOut,
                dependencies=[Depends(require_admin)], responses={404: {"model": Problem}, 409: {"model": Problem}},
                tags=["admin"])
    async def delete_kb(name: Annotated[str, PathParam(max_length=64, pattern=NAME_RE.pattern)], st: StateDep) -> dict[str, Any]:
        """Remove a KB (facts, passages, embeddings) and publish an index without it; never a text source or table."""
        try:
            if not await run_in_threadpool(st.workspace.has_kb, name):
                raise HTTPException(404, f"no knowledge base named {name!r}")
        except SourceNameError as e:
            raise HTTPException(409, str(e)) from None

        def run(job: Job) -> dict[str, Any]:
            job.report(0.05, "removing")
            st.workspace.remove_kb(name)
            return {"kb": name, **_reload_after(st, job, 0.3)}

        return st.jobs.submit("remove-kb", {"name": name}, _record(st, run)).to_dict()

    @router.post("/v1/admin/reindex", status_code=202, response_model=JobOut,
              dependencies=[Depends(require_admin)], tags=["admin"])
    async def reindex(st: StateDep) -> dict[str, Any]:
        """Rebuild the index from every store passage, publish it and swap it in."""
        return st.jobs.submit("reindex", {}, _record(st, lambda job: _reload_after(st, job, 0.05, full=True))).to_dict()

    @router.get("/v1/admin/jobs/{job_id}", response_model=JobOut, dependencies=[Depends(require_admin)],
             responses={404: {"model": Problem}}, tags=["admin"])
    async def get_job(job_id: Annotated[str, PathParam(max_length=64)], st: StateDep) -> dict[str, Any]:
        """State, progress (0..1), stage and error of a job."""
        job = st.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job.to_dict()

    @router.get("/v1/admin/jobs", response_model=list[JobOut], dependencies=[Depends(require_admin)],
             tags=["admin"])
    async def list_jobs(st: StateDep) -> list[dict[str, Any]]:
        return [j.to_dict() for j in st.jobs.list()]

    return router
