"""What the report reads out of metrics.jsonl: training curves, evaluation tables, the diagnosis.

Pure functions over the records ``gankit.rundir.RunDir`` reads (a list of dicts), so each is easy
to test and the same data can later feed a live page. Nothing here draws or writes HTML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gankit.rundir import EVAL_KEYS, RunDir

__all__ = ["Diagnosis", "EvalTable", "clean_records", "diagnose", "direction", "eval_table",
           "is_eval", "last", "number", "per_class_table", "PerClass", "series"]

#: Numbers in evaluation records that describe the evaluation rather than score G.
EVAL_META = frozenset({"step", "eval_seconds", "eval_n", "eval_n_BtoA", "n_per_class", "n_fake", "n_real", "seconds"})
#: Directions of the per-class scores ``gankit eval --per-class`` writes
#: (``gankit.metrics.evaluate_per_class``: ``fid/<class>``, ``acc/<class>`` and their means), which
#: no metric registry lists.
PER_CLASS_HIGHER = {"class_fid": False, "class_acc": True, "fid": False, "acc": True}


def number(value: Any) -> float | None:
    """A JSON value as float, or None if it is not a number (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def clean_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with a finite numeric step, sorted by step (stable). gankit never logs a step twice
    for training (a resumed run drops the lines past its checkpoint), but ``gankit eval`` may append
    the metrics of an earlier checkpoint after later training lines."""
    out: list[dict[str, Any]] = []
    for rec in records:
        step = number(rec.get("step"))
        if step is None or not math.isfinite(step):
            continue
        out.append({**rec, "step": int(step) if step.is_integer() else step})
    out.sort(key=lambda r: r["step"])
    return out


def is_eval(record: dict[str, Any]) -> bool:
    """Whether a record is an evaluation's (``--eval-every`` or ``gankit eval``), not training's."""
    return not EVAL_KEYS.isdisjoint(record)


def series(records: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) for the records whose ``key`` holds a finite number."""
    xs, ys = [], []
    for rec in records:
        v = number(rec.get(key))
        if v is not None and math.isfinite(v):
            xs.append(float(rec["step"]))
            ys.append(v)
    return xs, ys


def last(records: list[dict[str, Any]], key: str) -> float | None:
    """Value of ``key`` in the last record that has it as a number (may be NaN)."""
    for rec in reversed(records):
        v = number(rec.get(key))
        if v is not None:
            return v
    return None


# --------------------------------------------------------------------------- evaluation


def direction(key: str) -> bool | None:
    """True if a higher value of evaluation key ``key`` is better, False if lower, None if unknown.

    Asks the metric registries (``gankit.metrics``, ``gankit.metrics.translation``), imported
    here only: they load torch, which a report of a run without evaluations never needs.
    """
    base = key.split("/", 1)[0]
    if base in PER_CLASS_HIGHER:
        return PER_CLASS_HIGHER[base]
    try:
        from gankit.errors import GankitError
        from gankit.metrics import higher_is_better
        from gankit.metrics.translation import HIGHER_IS_BETTER
    except ImportError:
        return None
    if key in HIGHER_IS_BETTER:
        return HIGHER_IS_BETTER[key]
    try:
        return higher_is_better(key)
    except GankitError:
        return None


@dataclass
class EvalTable:
    """Evaluation scores over steps: ``rows[i]`` holds the scores measured at ``steps[i]``, one
    column per key of ``keys``; ``higher[k]`` is each key's direction (None: unknown)."""

    steps: list[int | float]
    keys: list[str]
    rows: list[dict[str, float]]
    higher: dict[str, bool | None] = field(default_factory=dict)
    n: list[float | None] = field(default_factory=list)  # samples scored at each step, if logged

    def best(self, key: str) -> float | None:
        """The best value of column ``key`` by its direction (None if unknown or empty)."""
        values = [r[key] for r in self.rows if key in r and math.isfinite(r[key])]
        if not values or self.higher.get(key) is None:
            return None
        return max(values) if self.higher[key] else min(values)


def eval_table(evals: list[dict[str, Any]]) -> EvalTable:
    """One row per evaluation (records of the same step and sample count merged, the later one
    winning: scores from different numbers of samples are not comparable, so they stay apart), one
    column per score in order of first appearance. ``gankit eval`` records its samples
    (``eval_n``), training's ``--eval-every`` does not (its n depends on the metric: the 2-D mode
    protocol always draws 2,500). ``gankit eval --per-class`` records are left to
    :func:`per_class_table`."""
    groups: dict[tuple[Any, float | None], dict[str, float]] = {}
    keys: dict[str, None] = {}
    for rec in evals:
        if "n_per_class" in rec:
            continue
        n = number(rec.get("eval_n"))
        row = groups.setdefault((rec["step"], n), {})
        for key, value in rec.items():
            v = number(value)
            if v is None or key in EVAL_META or "/" in key:
                continue
            row[key] = v
            keys[key] = None
    order = sorted((k for k, row in groups.items() if row), key=lambda k: (k[0], k[1] or 0))
    return EvalTable([k[0] for k in order], list(keys), [groups[k] for k in order],
                     {k: direction(k) for k in keys}, [k[1] for k in order])


PerClass = tuple[Any, float | None, list[tuple[str, float | None, float | None]]]


def per_class_table(evals: list[dict[str, Any]]) -> PerClass | None:
    """The latest ``gankit eval --per-class``: (its step, samples per class, [(class, fid, accuracy
    or None)] with a last row ``mean``), or None if there is none."""
    for rec in reversed(evals):
        names = [k.split("/", 1)[1] for k in rec if k.startswith("fid/")]
        if names:
            rows = [(c, number(rec.get(f"fid/{c}")), number(rec.get(f"acc/{c}"))) for c in names]
            rows.append(("mean", number(rec.get("class_fid")), number(rec.get("class_acc"))))
            return rec["step"], number(rec.get("n_per_class")), rows
    return None


# --------------------------------------------------------------------------- diagnosis


@dataclass
class Diagnosis:
    """The failures seen in a run, as ``gankit doctor`` reads them.

    ``findings``: each failure when it started (step, kind, message); ``active``: the kinds still
    present at the last record; ``rechecked``: whether the rules were replayed over the run (False:
    only the warnings training logged are known, not whether they have cleared, and ``why`` says
    why the replay was not possible); ``events``: rollbacks and other non-warning events.
    """

    findings: list[dict[str, Any]]
    active: set[str]
    rechecked: bool
    events: list[dict[str, Any]]
    why: str = ""
    titles: dict[str, str] = field(default_factory=dict)

    def title(self, kind: str) -> str:
        """A failure kind in words (``diminished_gradient`` -> ``diminished generator gradient``)."""
        return self.titles.get(kind, kind.replace("_", " "))


def diagnose(run: RunDir, events: list[dict[str, Any]]) -> Diagnosis:
    """Replay the run's records through ``gankit.diagnosis`` (what ``gankit doctor`` does), so the
    report says which warnings are still present; fall back to the logged warning ``events`` when
    that cannot be done (no torch, a config this gankit cannot read)."""
    others = [e for e in events if e.get("event") != "warning"]
    try:
        from gankit.diagnosis import FAILURES, diagnose_run
        from gankit.tasks import task_cures

        findings, _, latest = diagnose_run(run, task_cures(run.config()))
    except Exception as e:  # the report never fails over the diagnosis: it shows what was logged
        logged = [{"step": e_["step"], "kind": str(e_.get("kind") or e_.get("event")),
                   "message": str(e_.get("message", ""))} for e_ in events if e_.get("event") == "warning"]
        return Diagnosis(logged, set(), False, others, why=str(e).splitlines()[0] if str(e) else type(e).__name__)
    found = [{"step": f.step, "kind": f.kind, "message": f.message} for f in findings]
    return Diagnosis(found, set(latest.get("active", ())), True, others,
                     titles={k: f.title for k, f in FAILURES.items()})
