"""``gankit lab``: watch and steer training runs live, in a browser.

A local web app (Starlette on uvicorn) over a folder of runs: the run list (running, finished,
stopped or failed; latest samples, step, D(x), D(G(z)), warnings), and per run the curves (uPlot),
the sample grids with a step slider, for 2-D runs D's probability field drawn on a canvas with the
real and generated points and G's gradient arrows (as GAN Lab does, Kahng et al. 2018), and the
timeline of warnings and steering, all kept live by server-sent events as the run's files grow.
Steering (pause, resume, learning rates, stop) goes through the run's control channel,
RUN/control.jsonl (``gankit.train.control``).

Modules: ``server`` (the routes, the token), ``explore`` (drawing from checkpoints), ``launch``
(a new run from a preset, a stopped run resumed: detached ``gankit train`` processes). What is read of the runs (path confinement,
downsampling) is ``gankit.report.runs``, the following of metrics.jsonl ``gankit.report.tail``, and
the page itself (``static/``) and its static export ``gankit.report.page``: RUN/report.html is this
page exported, so the report and the lab never disagree.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from gankit.errors import GankitError

__all__ = ["DEFAULT_PORT", "lab_url", "serve"]

DEFAULT_PORT = 8765


def lab_url(host: str, port: int, token: str) -> str:
    """The address to open, token included."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve(root: str | Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
    """Serve the lab over the runs under ``root`` until interrupted; prints the URL (with the
    per-launch token) first. ``port`` 0 picks a free one."""
    import uvicorn

    from gankit.lab.server import LOOPBACK, make_app, new_token

    root = Path(root)
    if not root.is_dir():
        raise GankitError(f"{root} is not a folder: pass the folder your runs are in (log.out's parent)")
    port = port or _free_port(host)
    token = new_token()
    app = make_app(root, token, loopback=host in LOOPBACK)
    shown = socket.gethostname() if host in ("0.0.0.0", "::") else host  # every address: name this machine
    print(f"gankit lab: serving {root.resolve()}\n  open {lab_url(shown, port, token)}\n"
          "  (Ctrl-C to stop; the token in the address is needed to steer runs)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
