"""The control channel: steering a run while it trains, through RUN/control.jsonl.

``gankit lab`` appends one JSON object a line to RUN_DIR/control.jsonl, and so may a user by hand::

    echo '{"id": "1", "action": "pause"}'              >> RUN/control.jsonl
    echo '{"id": "2", "action": "resume"}'             >> RUN/control.jsonl
    echo '{"id": "5", "action": "step"}'               >> RUN/control.jsonl   # one step, paused again
    echo '{"id": "6", "action": "step_d"}'             >> RUN/control.jsonl   # D's update alone, paused
    echo '{"id": "7", "action": "step_g"}'             >> RUN/control.jsonl   # G's update alone, paused
    echo '{"id": "3", "action": "set", "lr_d": 1e-4}'  >> RUN/control.jsonl   # lr_g, lr_d or both
    echo '{"id": "8", "action": "set", "d_steps": 5}'  >> RUN/control.jsonl   # k of Algorithm 1
    echo '{"id": "9", "action": "set", "loss": "minimax"}' >> RUN/control.jsonl  # the GAN's loss
    echo '{"id": "4", "action": "stop"}'               >> RUN/control.jsonl   # checkpoint, then end

The training loop asks :class:`ControlChannel` at every step boundary; that costs a clock read, and
a ``stat`` of the file (its size) at most every ``every_s`` seconds: nothing of the GPU, no host
synchronisation, nothing at all when nobody writes. Only lines appended while the run trains are
read (a resumed run starts at the file's end, so an old ``stop`` is not obeyed twice). Every request
is answered by an event record in metrics.jsonl (``"event": "control"``, with its ``id`` and what
was done, or ``"event": "control_refused"`` saying why not), which the lab shows on the timeline.

``step_d`` and ``step_g`` are GAN Lab's "step D once" and "step G once": the run pauses (if it was
not) and the task updates that player alone, once, at once (``Task.half_step``; a task whose
iteration does not split into the two players' updates refuses, with a ``control_refused`` event
saying why). A half step is not a training step: the step count stays, so nothing of the cadence
(logging, samples, checkpoints) moves; it draws from the run's own streams (the data order's next
real batch for D, fresh z from the noise generator), as the next iteration would have, so they are
where the run's checkpoint expects them: a checkpoint saved after it (``stop``, Ctrl-C, or the next
one due) resumes exactly, the half step included in the weights, the optimiser state and the
streams; the same run without the half step would draw differently from then on.

Changed learning rates are the optimisers' base rates (``base_lr``, which the schedules of
``gankit.train.schedule`` scale: a rate set here is the schedule's new start, and its cosine goes
on from it to ``end / start`` of it); ``d_steps`` is k of Goodfellow et al.'s Algorithm 1,
the D updates per G update, and ``loss`` the GAN's loss (``minimax`` against ``nonsaturating``,
GAN Lab's comparison), for a task that has them (``Task.set_d_steps``, ``Task.set_loss``; the others
refuse). All are kept in each checkpoint under ``control`` and applied again on resume, so a steered
run resumes exactly as it was steered.

Interactive steering of the two players is GAN Lab's idea (Kahng et al. 2018, "GAN Lab:
Understanding complex deep generative models using interactive visual experimentation").
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # stdlib only at run time: gankit lab checks requests without loading torch
    import torch

__all__ = ["ACTIONS", "CannotSplit", "ControlChannel", "HALF_STEPS", "LR_KEYS", "MAX_D_STEPS", "MAX_LINE",
           "SETTINGS", "apply_lrs", "request_problem"]

#: What a request may ask.
ACTIONS = ("pause", "resume", "step", "step_d", "step_g", "set", "stop")
#: The half steps: the player each updates alone.
HALF_STEPS = {"step_d": "d", "step_g": "g"}


class CannotSplit(Exception):
    """A task's answer to a half step it cannot take (its iteration is one piece); the message
    says why, and becomes the refusal's event."""
#: The learning rates ``set`` may change, and the optimiser each belongs to (index into
#: ``Task.optimizers()``: generators' first, discriminators' last).
LR_KEYS = {"lr_g": 0, "lr_d": -1}
#: The settings besides the rates ``set`` may change, with what each is, in words.
SETTINGS = {"d_steps": "k (D updates per G update)", "loss": "GAN loss to switch"}
#: The most D updates per G update ``set`` may ask (``d_steps``, k of Algorithm 1).
MAX_D_STEPS = 100
#: The longest request line read (longer ones are refused unread).
MAX_LINE = 4096
#: The most bytes read from the file at one check.
MAX_READ = 1 << 20


def apply_lrs(optimizers: list[torch.optim.Optimizer], lrs: dict[str, float]) -> None:
    """Set the base learning rates named in ``lrs`` (``lr_g``, ``lr_d``), keeping the schedule's
    current factor (``lr / base_lr``) for the rate in use now."""
    for key, value in lrs.items():
        opt = optimizers[LR_KEYS[key]]
        for group in opt.param_groups:
            base = group.setdefault("base_lr", group["lr"])
            factor = group["lr"] / base if base else 1.0
            group["base_lr"] = value
            group["lr"] = value * factor


def request_problem(req: Any) -> str | None:
    """Why a parsed request line cannot be obeyed (None: it can)."""
    if not isinstance(req, dict):
        return "not a JSON object"
    action = req.get("action")
    if action not in ACTIONS:
        return f"action must be one of {', '.join(ACTIONS)}"
    if action == "set":
        lrs = {k: v for k, v in req.items() if k in LR_KEYS}
        if not lrs and "d_steps" not in req and "loss" not in req:
            return "set needs lr_g, lr_d, d_steps or loss"
        for k, v in lrs.items():
            if isinstance(v, bool) or not isinstance(v, int | float) or not (math.isfinite(v) and 0 < v <= 1):
                return f"{k} must be a number in (0, 1]"
        k = req.get("d_steps")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_D_STEPS):
            return f"d_steps must be a whole number from 1 to {MAX_D_STEPS}"
        loss = req.get("loss")
        if loss is not None and not (isinstance(loss, str) and 0 < len(loss) <= 32):
            return "loss must be a loss's name"
    return None


class ControlChannel:
    """Reads the requests appended to ``path`` (None: a channel that never has any, as under
    ``torchrun``, where rank 0 alone could not pause the others) and applies them.

    ``paused``, ``stop_requested`` and ``overrides`` (the learning rates set so far) are its state;
    the loop calls :meth:`boundary` before each step."""

    def __init__(self, path: Path | None, every_s: float = 0.25) -> None:
        self.path = path
        self.every_s = every_s
        self.paused = False
        self.granted = 0  # "step" requests: training steps to let through, pausing again after them
        self.stop_requested = False
        self.overrides: dict[str, float] = {}
        self.d_steps: int | None = None  # k set by a request (None: the config's)
        self.loss: str | None = None  # the loss set by a request (None: the config's)
        self._next = 0.0
        self._offset = 0
        self._partial = b""
        if path is not None:
            try:
                self._offset = os.stat(path).st_size  # only what is written from now on
            except OSError:
                self._offset = 0

    # ------------------------------------------------------------------ reading

    def poll(self, force: bool = False) -> list[dict[str, Any]]:
        """New complete request lines, parsed (or ``{"_bad": why, "_line": text}``); [] without a
        check when the last one was under ``every_s`` ago."""
        if self.path is None:
            return []
        now = time.monotonic()
        if not force and now < self._next:
            return []
        self._next = now + self.every_s
        try:
            size = os.stat(self.path).st_size
        except OSError:
            return []
        if size < self._offset:  # the file was replaced or truncated: read it from its start
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read(min(size - self._offset, MAX_READ))
        except OSError:
            return []
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        if len(self._partial) > MAX_LINE:
            self._partial = b""  # a runaway line without a newline: dropped
        out = []
        for raw in lines:
            if not raw.strip():
                continue
            text = raw[:MAX_LINE].decode("utf-8", errors="replace")
            if len(raw) > MAX_LINE:
                out.append({"_bad": f"longer than {MAX_LINE} bytes", "_line": text[:80]})
                continue
            try:
                req = json.loads(text)
            except (ValueError, RecursionError):
                out.append({"_bad": "not JSON", "_line": text[:80]})
                continue
            why = request_problem(req)
            out.append(req if why is None else {"_bad": why, "_line": text[:80],
                                                "id": req.get("id") if isinstance(req, dict) else None})
        return out

    # ------------------------------------------------------------------ applying

    def apply(self, req: dict[str, Any], step: int, optimizers: list[torch.optim.Optimizer],
              half_step: Callable[[str], str] | None = None,
              setters: Mapping[str, Callable[[Any], str]] | None = None) -> dict[str, Any]:
        """Carry out one request; the event record that says so. ``half_step(player)`` updates
        one player alone (``"d"`` or ``"g"``) and says what it did, or raises ``CannotSplit``;
        ``setters["d_steps"](k)`` and ``setters["loss"](name)`` change k of Algorithm 1 and the
        loss and say so, or raise ``CannotSplit``."""
        rid = req.get("id")
        rid = str(rid)[:64] if rid is not None else None
        if "_bad" in req:
            return {"step": step, "event": "control_refused", "id": rid,
                    "message": f"control request refused ({req['_bad']}): {req['_line']}"}
        action = req["action"]
        event: dict[str, Any] = {"step": step, "event": "control", "action": action, "id": rid}
        if action == "pause":
            self.paused = True
            event["message"] = "paused (until a resume or stop request)"
        elif action == "resume":
            self.paused, self.granted = False, 0
            event["message"] = "resumed"
        elif action == "step":  # GAN Lab's step button: one iteration (D's steps, then G's)
            self.paused = True
            self.granted += 1
            event["message"] = "one training step, then paused again"
        elif action in HALF_STEPS:  # GAN Lab's "step D" / "step G": one player's update alone
            self.paused = True
            if half_step is None:
                return {"step": step, "event": "control_refused", "id": rid, "action": action,
                        "message": f"{action} refused: this run cannot update one player alone"}
            try:
                event["message"] = half_step(HALF_STEPS[action]) + " (paused)"
            except CannotSplit as e:
                return {"step": step, "event": "control_refused", "id": rid, "action": action,
                        "message": f"{action} refused: {e} (paused)"}
        elif action == "stop":
            self.stop_requested, self.paused = True, False
            event["message"] = "stop: a checkpoint is saved and the run ends"
        else:
            said = []
            for key in SETTINGS:  # first: a refused setting leaves the rates as they were too
                if key in req:
                    try:
                        said.append(self._set(key, req[key], setters))
                    except CannotSplit as e:
                        return {"step": step, "event": "control_refused", "id": rid, "action": action,
                                "message": f"{key} refused: {e}"}
                    event[key] = req[key]
            lrs = {k: float(req[k]) for k in LR_KEYS if k in req}
            apply_lrs(optimizers, lrs)
            self.overrides.update(lrs)
            event.update(lrs)
            event["message"] = "set " + ", ".join(said + [f"{k} = {v:g}" for k, v in lrs.items()])
        return event

    def _set(self, key: str, value: Any, setters: Mapping[str, Callable[[Any], str]] | None) -> str:
        setter = (setters or {}).get(key)
        if setter is None:
            raise CannotSplit(f"this run has no {SETTINGS[key]} to change")
        said = setter(value)
        if key == "d_steps":
            self.d_steps = int(value)
        else:
            self.loss = str(value)
        return said

    def boundary(self, step: int, optimizers: list[torch.optim.Optimizer],
                 emit: Callable[[dict[str, Any]], None], interrupted: Callable[[], bool],
                 half_step: Callable[[str], str] | None = None,
                 setters: Mapping[str, Callable[[Any], str]] | None = None) -> None:
        """At a step boundary: apply any new requests (``emit`` logs each one's event; a half step
        runs ``half_step`` here); while paused, wait here, checking every ``every_s``, until resumed,
        stopped or ``interrupted()`` (Ctrl-C, SIGTERM), or a "step" request lets one step through."""
        for req in self.poll():
            emit(self.apply(req, step, optimizers, half_step, setters))
        while self.paused and not interrupted():
            if self.granted:
                self.granted -= 1
                return
            time.sleep(self.every_s)
            for req in self.poll(force=True):
                emit(self.apply(req, step, optimizers, half_step, setters))

    # ------------------------------------------------------------------ checkpoints

    def meta(self, optimizers: list[torch.optim.Optimizer]) -> dict[str, Any]:
        """What a checkpoint keeps of the steering: ``{"control": {"lr_g": ..., ...}}``, the base
        rates now in use of those set (a rollback since halved them), or {} if none was set."""
        now: dict[str, float | int | str] = {
            k: float(optimizers[LR_KEYS[k]].param_groups[0].get("base_lr", 0.0)) for k in self.overrides}
        if self.d_steps is not None:
            now["d_steps"] = self.d_steps
        if self.loss is not None:
            now["loss"] = self.loss
        return {"control": now} if now else {}

    def restore(self, meta: dict[str, Any], optimizers: list[torch.optim.Optimizer],
                setters: Mapping[str, Callable[[Any], str]] | None = None) -> None:
        """Apply again the learning rates and k a checkpoint's ``control`` holds (a resumed run)."""
        saved = meta.get("control")
        if not isinstance(saved, dict):
            return
        for key in SETTINGS:
            if key in saved and request_problem({"action": "set", key: saved[key]}) is None:
                with contextlib.suppress(CannotSplit):  # a task without it never saved one
                    self._set(key, saved[key], setters)
        lrs = {k: float(v) for k, v in saved.items() if k in LR_KEYS and isinstance(v, int | float)
               and not isinstance(v, bool) and math.isfinite(v) and v > 0}
        apply_lrs(optimizers, lrs)
        self.overrides.update(lrs)
