"""The HTTP API and the page: FastAPI routes over `Runs`, streams read from the run log.

Every route but the page's static files and `/openapi.json` needs `Authorization: Bearer TOKEN`;
the token is the user. Another user's run answers 404, exactly like a run that does not exist,
so ids cannot be probed. Errors are JSON `{"detail": ...}`: 400 for a bad request, 401 without
a valid token, 404, 409 for a run in the wrong state, 413 past a size limit, 429 past a count
limit.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from codeact.errors import CodeactError, ConfigError
from codeact.runs.store import RunRecord
from codeact.server import files as workspace_files
from codeact.server.approvals import Approvals
from codeact.server.config import ServerConfig
from codeact.server.limits import EdgeMiddleware
from codeact.server.record import WatchedStore
from codeact.server.runs import Busy, NotFound, RunRequest, Runs
from codeact.server.stream import event_stream

__all__ = ["build_app"]

_STATIC = ("index.html", "app.js", "style.css", "highlight.js")


class FileIn(BaseModel):
    path: str = Field(description="Relative path in the run's workspace.", max_length=512)
    content_base64: str = Field(description="The file's bytes, base64.")


class RunIn(BaseModel):
    task: str = Field(min_length=1)
    model: str | None = Field(None, description="One of the server's models (GET /api/config); "
                              "the default when left out.")
    max_steps: int = Field(10, ge=1)
    max_tokens: int | None = Field(None, gt=0)
    max_seconds: float | None = Field(None, gt=0)
    max_cost: float | None = Field(None, gt=0)
    files: list[FileIn] = Field(default_factory=list, description="Put into the workspace before the run starts.")


class ResumeIn(BaseModel):
    max_steps: int | None = Field(None, ge=1, description="The step budget of the resumed run.")


class DecisionIn(BaseModel):
    verdict: str = Field(pattern="^(approve|deny|edit)$")
    message: str = Field("", max_length=4_000)
    arguments: dict[str, Any] | None = Field(None, description="For `edit`: the call's new arguments by name.")


class RunOut(BaseModel):
    id: str
    task: str
    model: str
    status: str
    live: bool
    steps: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    created: float
    updated: float
    budget: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: str | None = None


class FileOut(BaseModel):
    path: str
    size: int


class ApprovalOut(BaseModel):
    id: str
    run_id: str | None
    step: int | None
    tool: str
    arguments: dict[str, Any]
    description: str
    reason: str
    timeout_s: float | None
    created_at: float


def _user(request: Request, authorization: Annotated[str | None, Header()] = None) -> str:
    """The user whose token the request carries (401 without a valid one)."""
    scheme, _, token = (authorization or "").partition(" ")
    found = request.app.state.users.user(token.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        raise _UnauthorizedError
    return str(found)


User = Annotated[str, Depends(_user)]


def build_app(config: ServerConfig) -> Any:
    """The ASGI app for `config` (serve it with uvicorn; `serve()` does)."""
    store = WatchedStore(config.store)
    approvals = Approvals(store, timeout=config.limits.max_approval_seconds, tools=config.tools)
    runs = Runs(config, store, agent_options=approvals.agent_options())
    streams = {"open": 0}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        store.bind(loop)
        # Each live run may hold a worker thread for its code step and one for a model call, and
        # streams read the log in threads: the default pool (cpu_count + 4) would let a few slow
        # steps starve every other run.
        workers = config.limits.max_runs * 2 + 16
        loop.set_default_executor(ThreadPoolExecutor(workers, thread_name_prefix="codeact-serve"))
        try:
            yield
        finally:
            approvals.close()
            await runs.close()
            store.close()

    app = FastAPI(title="codeact", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/openapi.json",
                  description="Start, watch, steer and approve codeact runs.")
    app.state.runs = runs
    app.state.users = config.users
    app.state.approvals = approvals

    @app.exception_handler(CodeactError)
    async def _errors(_: Request, exc: CodeactError) -> JSONResponse:
        status = 404 if isinstance(exc, NotFound) else 429 if isinstance(exc, Busy) else 400
        return JSONResponse({"detail": str(exc)[:2_000]}, status_code=status)

    @app.exception_handler(_UnauthorizedError)
    async def _unauthorized(_: Request, exc: _UnauthorizedError) -> JSONResponse:
        return JSONResponse({"detail": "a valid token is needed: Authorization: Bearer TOKEN"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})

    def out(record: RunRecord) -> RunOut:
        return RunOut(id=record.id, task=record.task, model=str(record.meta.get("model_spec") or record.model),
                      status=record.state if record.id not in runs.live else "running",
                      live=record.id in runs.live, steps=record.steps, prompt_tokens=record.prompt_tokens,
                      completion_tokens=record.completion_tokens, cost=record.cost, created=record.created,
                      updated=record.updated, budget=dict(record.meta.get("budget") or {}),
                      output=_jsonable(record.output), error=record.error)

    # -- the page ---------------------------------------------------------------------------------
    static = resources.files("codeact.server") / "static"

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return _static(static, "index.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        if name not in _STATIC:
            return JSONResponse({"detail": "not found"}, status_code=404)
        return _static(static, name)

    # -- the API ----------------------------------------------------------------------------------
    @app.get("/api/config", summary="What this server offers: models, tools, limits")
    async def server_config(who: User) -> dict[str, Any]:
        limits = config.limits
        return {"user": who, "models": list(config.models), "default_model": config.default_model,
                "tools": [t.name for t in config.tools],
                "limits": {"max_steps": limits.max_steps, "max_file_bytes": limits.max_file_bytes,
                           "max_request_bytes": limits.max_request_bytes, "max_runs": limits.max_runs}}

    @app.post("/api/runs", status_code=201, summary="Start a run", response_model=RunOut)
    async def create_run(body: RunIn, who: User) -> RunOut:
        request = RunRequest(body.task, body.model or config.default_model, max_steps=body.max_steps,
                             max_tokens=body.max_tokens, max_seconds=body.max_seconds, max_cost=body.max_cost)
        runs.check(who, request)
        decoded = [(f.path, _b64(f.content_base64)) for f in body.files]
        key, folder = runs.new_workspace()
        for path, data in decoded:
            workspace_files.write_file(folder, path, data, max_bytes=config.limits.max_file_bytes)
        run_id = await runs.start(who, request, (key, folder))
        return out(runs.record(who, run_id))

    @app.get("/api/runs", summary="Your runs, newest first", response_model=list[RunOut])
    async def list_runs(who: User, limit: int = 50) -> list[RunOut]:
        records = await asyncio.to_thread(store.owned_runs, who, limit=max(1, min(limit, 500)))
        return [out(r) for r in records]

    @app.get("/api/runs/{run_id}", summary="One run", response_model=RunOut)
    async def get_run(run_id: str, who: User) -> RunOut:
        return out(runs.record(who, run_id))

    @app.get("/api/runs/{run_id}/events", summary="The run's events as Server-Sent Events",
             description="From the run log; `Last-Event-ID` (or `after`) resumes after that event. Ends "
             "with an `end` event once the run is over.", response_class=StreamingResponse)
    async def run_events(run_id: str, who: User, after: int = 0,
                         last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
        runs.record(who, run_id)
        if last_event_id and last_event_id.strip().isdigit():
            after = int(last_event_id.strip())
        if streams["open"] >= config.limits.max_streams:
            raise Busy("too many event streams are open on this server; try again later")

        async def counted() -> AsyncIterator[bytes]:
            streams["open"] += 1
            try:
                async for chunk in event_stream(store, run_id, max(after, 0), live=lambda: run_id in runs.live):
                    yield chunk
            finally:
                streams["open"] -= 1

        return StreamingResponse(counted(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @app.post("/api/runs/{run_id}/cancel", summary="Stop a live run (it ends as interrupted)",
              response_model=RunOut)
    async def cancel_run(run_id: str, who: User) -> RunOut:
        if not runs.cancel(who, run_id):
            raise _ConflictError(f"run {run_id} is not running")
        approvals.deny_run(run_id, "the run was cancelled")
        task = runs.live.get(run_id)
        if task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(task.task), timeout=10)
        return out(runs.record(who, run_id))

    @app.post("/api/runs/{run_id}/resume", summary="Continue a run that ended without an answer",
              response_model=RunOut)
    async def resume_run(run_id: str, body: ResumeIn, who: User) -> RunOut:
        record = runs.record(who, run_id)
        if run_id in runs.live:
            raise _ConflictError(f"run {run_id} is running")
        if record.status == "success":
            raise _ConflictError(f"run {run_id} already has an answer")
        if body.max_steps is not None and body.max_steps > config.limits.max_steps:
            raise ConfigError(f"max_steps must be at most {config.limits.max_steps}")
        await runs.resume(who, run_id, max_steps=body.max_steps)
        return out(runs.record(who, run_id))

    @app.get("/api/runs/{run_id}/files", summary="Files in the run's workspace", response_model=list[FileOut])
    async def list_files(run_id: str, who: User) -> list[FileOut]:
        folder = runs.workspace(who, run_id)
        found = await asyncio.to_thread(workspace_files.list_files, folder, limit=config.limits.max_workspace_files)
        return [FileOut(path=f.path, size=f.size) for f in found]

    @app.get("/api/runs/{run_id}/files/{path:path}", summary="Download a file from the run's workspace",
             response_class=Response)
    async def download(run_id: str, path: str, who: User) -> Response:
        folder = runs.workspace(who, run_id)
        data = await asyncio.to_thread(workspace_files.read_file, folder, path,
                                       max_bytes=config.limits.max_file_bytes)
        name = Path(path).name.encode("ascii", "replace").decode().replace('"', "_")
        # Never a type a browser renders (HTML, SVG): a file the run wrote is data.
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.put("/api/runs/{run_id}/files/{path:path}", summary="Upload a file into the run's workspace",
             response_model=FileOut, status_code=201)
    async def upload(run_id: str, path: str, request: Request, who: User) -> FileOut:
        folder = runs.workspace(who, run_id)
        data = await request.body()
        entry = await asyncio.to_thread(workspace_files.write_file, folder, path, data,
                                        max_bytes=config.limits.max_file_bytes)
        return FileOut(path=entry.path, size=entry.size)

    @app.get("/api/approvals", summary="Tool calls waiting for your decision", response_model=list[ApprovalOut])
    async def pending(who: User, run_id: str | None = None) -> list[ApprovalOut]:
        return [ApprovalOut(**a) for a in approvals.pending(who, run_id, runs.record)]

    @app.post("/api/approvals/{request_id}", summary="Approve, deny or edit a pending tool call")
    async def decide(request_id: str, body: DecisionIn, who: User) -> dict[str, Any]:
        if not approvals.answer(who, request_id, body.verdict, body.message, body.arguments, runs.record):
            raise _ConflictError("that request was already decided or timed out")
        return {"id": request_id, "verdict": body.verdict}

    @app.exception_handler(_ConflictError)
    async def _conflict(_: Request, exc: _ConflictError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    return EdgeMiddleware(app, max_bytes=config.limits.max_request_bytes)  # type: ignore[return-value]


class _UnauthorizedError(Exception):
    pass


class _ConflictError(Exception):
    pass


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("a file's content_base64 is not valid base64") from None


def _static(folder: Any, name: str) -> Response:
    media = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8",
             "css": "text/css; charset=utf-8"}[name.rsplit(".", 1)[1]]
    return Response((folder / name).read_bytes(), media_type=media, headers={"Cache-Control": "no-cache"})


def _jsonable(value: Any) -> Any:
    from codeact.runs.events import to_jsonable

    return to_jsonable(value)

