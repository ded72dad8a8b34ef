"""The lab's latent explorer: draw from a run's newest checkpoint in the browser.

``/api/explore`` (GET) says what the run's checkpoint offers; ``/api/explore/sample`` (a grid
for a seed, a class), ``/api/explore/interpolate`` (a strip between two seeds),
``/api/explore/caption`` (a text -> image run's images of a caption) answer PNGs; a translator's
``/api/explore/translate`` takes an uploaded image (POST, with the lab's token like every POST).

Checkpoints are loaded with the safe loaders (``gankit.sampling``, ``gankit.text_sampling``,
``gankit.translating``: verified, never unpickled), cached per (run, checkpoint step), at most
:data:`CACHE_SIZE` at a time. Torch work runs in Starlette's thread pool, off the event loop; the
number of torch threads is left as it is.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gankit.errors import GankitError
from gankit.images import make_grid, png_bytes
from gankit.report.page import finite
from gankit.report.runs import Refused
from gankit.rundir import RunDir, resolve_last, step_of

__all__ = ["CACHE_SIZE", "MAX_N", "MAX_UPLOAD", "Explorer", "explore_routes"]

#: loaded checkpoints kept at once
CACHE_SIZE = 4
#: the most images one request draws
MAX_N = 64
#: the largest upload (bytes); a larger one is refused with 413 before it is decoded
MAX_UPLOAD = 4 << 20


@dataclass
class Loaded:
    """A run's newest checkpoint as the explorer uses it: ``kind`` is gan, text or translator."""

    kind: str
    step: int
    model: Any  # LoadedGenerator, LoadedTextGenerator or LoadedTranslator

    def info(self) -> dict[str, Any]:
        """What the page needs to build its controls."""
        out: dict[str, Any] = {"kind": self.kind, "step": self.step}
        m = self.model
        if self.kind == "gan":
            out.update(points=len(m.shape.dims) == 1, num_classes=m.num_classes,
                       classes=m.classes or [str(k) for k in range(m.num_classes)])
        elif self.kind == "translator":
            out.update(directions=["AtoB", "BtoA"] if "G_BA" in m.nets else ["AtoB"],
                       shape_A=list(m.meta.get("shape_A", [])), shape_B=list(m.meta.get("shape_B", [])))
        return out


def _kind(ckpt: Path) -> str:
    """gan, text or translator; another task's checkpoint is ``Refused`` with what it is."""
    from gankit.predicting import is_nextframe_checkpoint
    from gankit.text_sampling import is_text_checkpoint
    from gankit.translating import is_translator_checkpoint
    from gankit.view_sampling import is_view_checkpoint

    if is_translator_checkpoint(ckpt):
        return "translator"
    if is_text_checkpoint(ckpt):
        return "text"
    if is_nextframe_checkpoint(ckpt):
        raise Refused("not for this run: a next-frame predictor continues videos (gankit predict), "
                      "it draws nothing from noise", 400)
    if is_view_checkpoint(ckpt):
        raise Refused("not for this run: a novel-view model turns a photo (gankit views), "
                      "the explorer does not drive it", 400)
    return "gan"


def _load(ckpt: Path, kind: str) -> Any:
    if kind == "translator":
        from gankit.translating import load_translator
        return load_translator(ckpt)
    if kind == "text":
        from gankit.text_sampling import load_text_generator
        return load_text_generator(ckpt)
    from gankit.sampling import load_generator
    return load_generator(str(ckpt))


class Explorer:
    """Loaded checkpoints by (run, step, state.json's time), newest used last, at most ``size`` of
    them (thread-safe)."""

    def __init__(self, size: int = CACHE_SIZE, loader: Callable[[Path, str], Any] = _load) -> None:
        self.size = size
        self.loader = loader
        self.cache: OrderedDict[tuple[str, int, int], Loaded] = OrderedDict()
        self.lock = threading.Lock()
        self.loads = 0  # how many checkpoints were loaded (tests: the cache is used)

    def get(self, run: RunDir) -> Loaded:
        """The run's newest checkpoint, loaded (or from the cache); ``Refused`` if it has none."""
        ckpt = resolve_last(run.checkpoints_dir)
        step = step_of(ckpt) if ckpt is not None else None
        if ckpt is None or step is None:
            raise Refused("this run has no checkpoint yet (the explorer draws from its newest one)", 404)
        if run.path.resolve() not in ckpt.resolve().parents:  # a ``last`` link leading out of the run
            raise Refused("the run's newest checkpoint is not inside the run", 404)
        try:  # a run trained again from scratch into the same folder has new files at the same step
            stamp = (ckpt / "state.json").stat().st_mtime_ns
        except OSError:
            raise Refused("the run's newest checkpoint cannot be read", 404) from None
        key = (str(run.path.resolve()), step, stamp)
        with self.lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
        kind = _kind(ckpt)
        try:
            loaded = Loaded(kind, step, self.loader(ckpt, kind))
        except GankitError as e:
            raise Refused(f"the checkpoint cannot be loaded: {e}", 409) from None
        with self.lock:
            self.loads += 1
            self.cache[key] = loaded
            while len(self.cache) > self.size:
                self.cache.popitem(last=False)
        return loaded


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise Refused(f"{name} must be a whole number", 400) from None
    if not lo <= value <= hi:
        raise Refused(f"{name} must be between {lo} and {hi}", 400)
    return value


def _png(images: torch.Tensor, nrow: int | None = None) -> Response:
    return Response(png_bytes(make_grid(images.detach().float().cpu(), nrow=nrow)), media_type="image/png",
                    headers={"Cache-Control": "no-store"})


def _want(loaded: Loaded, kind: str) -> None:
    if loaded.kind != kind:
        raise Refused(f"not for this run: it is a {loaded.kind} run, this needs a {kind} run", 400)


def _images_only(loaded: Loaded) -> None:
    if len(loaded.model.shape.dims) == 1:
        raise Refused("not for this run: a 2-D run's samples are points; its page draws them in the field", 400)


def explore_routes(run_of: Callable[[Request], RunDir], explorer: Explorer) -> list[Route]:
    """The explorer's routes; ``run_of`` resolves the request's ``run`` (confined to the lab's root)."""

    async def loaded_of(request: Request) -> Loaded:
        run = run_of(request)
        return await run_in_threadpool(explorer.get, run)

    async def info(request: Request) -> Response:
        return JSONResponse(finite((await loaded_of(request)).info()), headers={"Cache-Control": "no-store"})

    async def sample(request: Request) -> Response:
        loaded = await loaded_of(request)
        _want(loaded, "gan")
        _images_only(loaded)
        n = _int(request, "n", 16, 1, MAX_N)
        seed = _int(request, "seed", 0, 0, 2**31 - 1)
        y = None
        if "class" in request.query_params:
            if not loaded.model.num_classes:
                raise Refused("not for this run: it is not class-conditional", 400)
            y = torch.full((n,), _int(request, "class", 0, 0, loaded.model.num_classes - 1), dtype=torch.long)

        def draw() -> torch.Tensor:
            with torch.inference_mode():
                return loaded.model.sample(n, seed, y)
        return _png(await run_in_threadpool(draw))

    async def interpolate(request: Request) -> Response:
        from gankit.models import sample_prior
        from gankit.sampling import generate, interpolate_latents

        loaded = await loaded_of(request)
        _want(loaded, "gan")
        _images_only(loaded)
        a = _int(request, "seed_a", 0, 0, 2**31 - 1)
        b = _int(request, "seed_b", 1, 0, 2**31 - 1)
        n = _int(request, "n", 8, 2, MAX_N)
        k = _int(request, "class", 0, 0, max(loaded.model.num_classes - 1, 0))
        m = loaded.model

        def draw() -> torch.Tensor:
            cfg = m.config.model
            z0, z1 = (sample_prior(cfg.prior, 1, cfg.latent_dim, generator=torch.Generator().manual_seed(s))[0]
                      for s in (a, b))
            z = interpolate_latents(z0, z1, n, cfg.prior)
            y = torch.full((n,), k, dtype=torch.long) if m.num_classes else None
            with torch.inference_mode():
                return generate(m.G, z, y)
        return _png(await run_in_threadpool(draw), nrow=n)

    async def caption(request: Request) -> Response:
        loaded = await loaded_of(request)
        _want(loaded, "text")
        text = request.query_params.get("text", "").strip()
        if not text or len(text) > 500:
            raise Refused("give a caption of 1 to 500 characters (text=...)", 400)
        n = _int(request, "n", 8, 1, MAX_N)
        seed = _int(request, "seed", 0, 0, 2**31 - 1)

        def draw() -> torch.Tensor:
            with torch.inference_mode():
                return loaded.model.sample([text], n, seed)
        try:
            return _png(await run_in_threadpool(draw))
        except GankitError as e:  # a caption the run's vocabulary cannot read
            raise Refused(str(e), 400) from None

    async def translate(request: Request) -> Response:
        from gankit.data.base import to_float
        from gankit.data.folder import decode_image_bytes
        from gankit.translating import translate_images

        run = run_of(request)
        direction = request.query_params.get("direction", "AtoB")
        if direction not in ("AtoB", "BtoA"):
            raise Refused("direction is AtoB or BtoA", 400)
        try:
            declared = int(request.headers.get("content-length", "0"))
        except ValueError:
            declared = 0
        too_big = Refused(f"an upload is at most {MAX_UPLOAD >> 20} MiB", 413)
        if declared > MAX_UPLOAD:
            raise too_big
        body = bytearray()
        async for chunk in request.stream():  # counted as it comes: a lying Content-Length stops here too
            body.extend(chunk)
            if len(body) > MAX_UPLOAD:
                raise too_big
        loaded = await run_in_threadpool(explorer.get, run)
        _want(loaded, "translator")
        if direction not in loaded.info()["directions"]:
            raise Refused(f"this translator has no {direction} generator", 400)
        c, h, w = loaded.model.meta["shape_A" if direction == "AtoB" else "shape_B"]

        def work() -> torch.Tensor | str:
            pixels = decode_image_bytes(bytes(body), (h, w), c)
            if isinstance(pixels, str):
                return pixels
            x = torch.from_numpy(pixels)
            x = x[None, None] if x.ndim == 2 else x.permute(2, 0, 1)[None]
            if x.shape[1] != c:  # a grey run given colour or the other way round
                x = x.float().mean(1, keepdim=True).round().to(torch.uint8) if c == 1 else x.expand(1, 3, h, w)
            x = to_float(x)
            with torch.inference_mode():
                return torch.cat([x, translate_images(loaded.model.generator(direction), x)])
        out = await run_in_threadpool(work)
        if isinstance(out, str):
            raise Refused(f"the upload is refused: {out}", 400)
        return _png(out, nrow=2)

    return [
        Route("/api/explore", info),
        Route("/api/explore/sample", sample),
        Route("/api/explore/interpolate", interpolate),
        Route("/api/explore/caption", caption),
        Route("/api/explore/translate", translate, methods=["POST"]),
    ]
