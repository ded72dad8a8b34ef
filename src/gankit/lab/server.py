"""The lab's web server: the run list, each run's curves, samples and events as JSON, a stream of
server-sent events while the run grows, and the control requests (Starlette, served by uvicorn).

Security: the server binds 127.0.0.1 unless told otherwise; every state-changing request (POST)
must carry the per-launch token (``X-Gankit-Token`` header or ``token`` query parameter) or is
answered 403; while bound to the loopback, a request naming another host (DNS rebinding) is
answered 403 too (``/api/launch`` starts training processes: :mod:`gankit.lab.launch`); every run path goes through ``gankit.report.runs.resolve_run`` (no absolute paths,
no ``..``, nothing a symlink leads out of the root to). Nothing is unpickled; the one upload (an image
for a translator, :mod:`gankit.lab.explore`) is size-limited and decoded as training data is.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from gankit.lab.explore import Explorer, explore_routes
from gankit.lab.launch import launch, list_presets
from gankit.report.page import STATIC, finite
from gankit.report.runs import (
    MAX_POINTS,
    Refused,
    find_runs,
    resolve_run,
    run_series,
    run_summary,
    sample_steps,
)
from gankit.report.tail import Tail
from gankit.train.control import LR_KEYS, MAX_LINE, SETTINGS, request_problem

__all__ = ["LOOPBACK", "STATIC", "make_app", "new_token"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: How often the stream looks at metrics.jsonl (a line reaches the page well within a second).
POLL_S = 0.2


def new_token() -> str:
    """A fresh per-launch token (``secrets.token_urlsafe``)."""
    return secrets.token_urlsafe(24)


def _json(obj: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(finite(obj), status_code=status, headers={"Cache-Control": "no-store"})


def _host_ok(request: Request, loopback: bool) -> bool:
    if not loopback:
        return True
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
    return name in LOOPBACK or name == "testserver"


async def _json_body(request: Request, what: str) -> dict[str, Any]:
    """A POST's body as a JSON object, at most ``MAX_LINE`` bytes: refused (413) before it is read
    when its Content-Length says it is longer, and after when it turns out so; 400 unless it is
    a JSON object (an empty body is {})."""
    try:
        declared = int(request.headers.get("content-length", "0"))
    except ValueError:
        declared = 0
    if declared > MAX_LINE:
        raise Refused(f"{what} is at most {MAX_LINE} bytes", 413)
    body = await request.body()
    if len(body) > MAX_LINE:
        raise Refused(f"{what} is at most {MAX_LINE} bytes", 413)
    try:
        asked = json.loads(body or b"{}")
    except (ValueError, RecursionError):
        raise Refused("the body must be a JSON object", 400) from None
    if not isinstance(asked, dict):
        raise Refused("the body must be a JSON object", 400)
    return asked


def make_app(root: str | os.PathLike, token: str, loopback: bool = True,
             explorer: Explorer | None = None) -> Starlette:
    """The lab's ASGI app over the runs under ``root``, its POSTs guarded by ``token``;
    ``loopback``: refuse requests for other host names (the server listens on 127.0.0.1);
    ``explorer``: the cache of loaded checkpoints (default: a new one)."""
    root_path = Path(root).resolve()

    def run_of(request: Request) -> Any:
        return resolve_run(root_path, request.query_params.get("run", ""))

    async def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def runs(request: Request) -> Response:
        out = []
        for rel in find_runs(root_path):
            try:
                out.append(run_summary(root_path, rel))
            except Refused:  # a symlinked run leading out of the root: not listed
                continue
        return _json({"root": root_path.name, "runs": out})

    async def one_run(request: Request) -> Response:
        run_of(request)
        return _json(run_summary(root_path, request.query_params.get("run", "")))

    async def metrics(request: Request) -> Response:
        q = request.query_params
        try:
            lo = float(q["lo"]) if "lo" in q else None
            hi = float(q["hi"]) if "hi" in q else None
            most = min(int(q.get("max", MAX_POINTS)), 20_000)
        except ValueError:
            raise Refused("lo, hi and max must be numbers", 400) from None
        return _json(run_series(run_of(request), lo, hi, max(most, 10)))

    async def sample(request: Request) -> Response:
        run = run_of(request)
        try:
            step = int(request.query_params.get("step", ""))
        except ValueError:
            raise Refused("step must be a whole number", 400) from None
        kind = request.query_params.get("kind", "png")
        if kind not in ("png", "json") or step < 0:
            raise Refused("kind is png or json", 400)
        path = run.samples_dir / f"step-{step:06d}.{kind}"
        try:  # the file itself, not a symlink out of the run
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            raise Refused("no such sample") from None
        if run.path.resolve() not in real.parents or not real.is_file():
            raise Refused("no such sample")
        return FileResponse(real, headers={"Cache-Control": "max-age=3600"})

    async def stream(request: Request) -> Response:
        run = run_of(request)
        rel = request.query_params.get("run", "")
        try:
            offset = max(0, int(request.query_params.get("offset", "0")))
        except ValueError:
            raise Refused("offset must be a whole number", 400) from None
        once = request.query_params.get("once") == "1"  # tests: what there is now, then the end
        tail = Tail(run.metrics_path, offset)

        def event(name: str, data: Any) -> str:
            return f"event: {name}\ndata: {json.dumps(finite(data), allow_nan=False)}\n\n"

        async def gen() -> Any:
            yield "retry: 1000\n\n"
            seen = set(sample_steps(run))
            next_slow, next_beat = 0.0, time.monotonic() + 15
            while True:
                recs, reset = tail.read()
                if reset:
                    yield event("reset", {})
                if recs:
                    yield event("records", {"records": recs, "offset": tail.position})
                now = time.monotonic()
                if now >= next_slow or once:  # samples and status: once a second
                    next_slow = now + 1.0
                    steps = sample_steps(run)
                    new = [s for s in steps if s not in seen]
                    if new:
                        seen.update(new)
                        yield event("samples", {"new": new, "samples": steps})
                    yield event("status", run_summary(root_path, rel))
                if once:
                    return
                if now >= next_beat:
                    next_beat = now + 15
                    yield ": keep-alive\n\n"
                await asyncio.sleep(POLL_S)

        return StreamingResponse(gen(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def control(request: Request) -> Response:
        run = run_of(request)
        asked = await _json_body(request, "a control request")
        req = {"id": secrets.token_hex(6), "action": asked.get("action"),
               **{k: asked[k] for k in (*LR_KEYS, *SETTINGS) if k in asked}, "from": "lab",
               "time": round(time.time(), 3)}
        problem = request_problem(req)
        if problem:
            raise Refused(problem, 400)
        path = run.control_path
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:  # appended in one write: a user's echo and the lab's lines never interleave
            fd = os.open(path, flags, 0o644)
        except OSError:
            raise Refused("control.jsonl cannot be written (a symlink, or no permission)", 403) from None
        try:
            if not os.path.isfile(path):
                raise Refused("control.jsonl is not a regular file", 403)
            os.write(fd, (json.dumps(req) + "\n").encode())
        finally:
            os.close(fd)
        running = run_summary(root_path, request.query_params.get("run", ""))["status"] == "running"
        return _json({"id": req["id"], "request": req, "running": running})

    async def presets(request: Request) -> Response:
        return _json({"presets": list_presets(root_path)})

    async def launch_run(request: Request) -> Response:
        done = launch(root_path, await _json_body(request, "a launch request"))
        return _json({"pid": done["pid"], "run": done["run"]})

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return _json({"error": str(exc)}, exc.status)

    class Guard:
        """Token on state-changing requests; host names while on the loopback."""

        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http":
                request = Request(scope)
                given = request.headers.get("x-gankit-token") or request.query_params.get("token") or ""
                if not _host_ok(request, loopback) or (
                        request.method not in ("GET", "HEAD")
                        and not secrets.compare_digest(given.encode(), token.encode())):
                    await _json({"error": "forbidden: the lab's token is missing or wrong"}, 403)(
                        scope, receive, send)
                    return
            await self.app(scope, receive, send)

    app = Starlette(routes=[
        Route("/", index),
        Route("/api/runs", runs),
        Route("/api/run", one_run),
        Route("/api/metrics", metrics),
        Route("/api/sample", sample),
        Route("/api/stream", stream),
        Route("/api/control", control, methods=["POST"]),
        Route("/api/presets", presets),
        Route("/api/launch", launch_run, methods=["POST"]),
        *explore_routes(run_of, explorer or Explorer()),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ], exception_handlers={Refused: refused})
    app.add_middleware(Guard)
    return app
