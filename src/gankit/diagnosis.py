"""The three classic failures of GAN training, detected from cheap signals while a run goes.

GAN training has three classic failures (Goodfellow et al. 2014; Salimans et al. 2016); each has a signature in numbers gankit already logs:

- **diminished gradient**: D wins outright (D(x) -> 1, D(G(z)) -> 0) and the norm of G's gradient
  collapses, so G stops learning (Goodfellow et al. 2014, section 3; Arjovsky & Bottou 2017);
- **mode collapse**: G's samples become less varied than the data (their mean pairwise distance
  in feature space, relative to real data's), and where the modes or classes are known, fewer of
  them are hit (Metz et al. 2017; Srivastava et al. 2017);
- **non-convergence**: the game does not settle: D's margin D(x) - D(G(z)) oscillates, or drifts
  steadily in D's favour (Salimans et al. 2016; Mescheder et al. 2018). Divergence (NaN or Inf) is
  its extreme and is handled by the trainer, which rolls the run back to its last checkpoint.

On a small image set a fourth reading joins them, **overfitting**: D is sure of the real images and
rejects G's because it has memorised the few it sees over and over (Karras et al. 2020, "Training
Generative Adversarial Networks with Limited Data"); its cure, augmenting what D sees (``--ada``,
``--diffaugment``), is then named first, also among the other failures' cures.

``Probe`` measures the signals that need the networks (diversity, modes, classes) at fixed
latents; ``check`` turns a run's metric records into ``Finding``\\s, each one plain sentence that
says what is happening and which cures of the catalogue to try. The trainer calls ``check`` as
records arrive; ``gankit doctor RUN_DIR`` calls ``diagnose_run`` on a finished or running run's
metrics.jsonl, so both say the same thing.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gankit.data.base import DataTraits
from gankit.models import DataShape
from gankit.rundir import RunDir

# --------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Failure:
    """One of the failures: its name, what it means, and the cures (flags) that address it."""

    kind: str
    title: str
    cures: str


FAILURES = {
    "diminished_gradient": Failure(
        "diminished_gradient", "diminished generator gradient",
        "--loss nonsaturating (if minimax), a weaker or slower D (--lr-d lower than --lr-g: TTUR), "
        "--instance-noise 0.1, --label-smoothing 0.1, --spectral-norm, or --loss wgan-gp"),
    "mode_collapse": Failure(
        "mode_collapse", "mode collapse",
        "--pack 4 (PacGAN), --mbstd, --unrolled 5, --loss wgan-gp, or --diffaugment "
        "color,translation,cutout on small image sets. The samples judged come from the moving "
        "average of G's weights (--ema), which lags G: if this appears only early, a smaller "
        "--ema or --ema-rampup shows G's own progress sooner"),
    "non_convergence": Failure(
        "non_convergence", "non-convergence",
        "lower learning rates (--lr-g, --lr-d), --r1 10 (0.1 for 2-D points), --spectral-norm, "
        "--ema 0.999 (sample from an average of G's weights, which smooths the oscillation; "
        "Yazici et al. 2019), or TTUR (--lr-d 4e-4 --lr-g 1e-4)"),
    "divergence": Failure(
        "divergence", "divergence",
        "lower learning rates, --loss nonsaturating, --r1 or --gp, --spectral-norm"),
    "overfitting": Failure(
        "overfitting", "D memorises a small data set",
        "--ada (adaptive discriminator augmentation, Karras et al. 2020; on by default for a folder "
        "under 20,000 images) or --diffaugment translation,color,cutout (Zhao et al. 2020), then "
        "--r1 10, a smaller D (--width) or more images"),
}
AUGMENT_FIRST = "--ada or --diffaugment translation,color,cutout (D memorises a set this small)"
AT_CAP_CURES = ("the ops ADA lacks (--diffaugment translation,color,cutout), --r1 10, a smaller D "
                "(--width) or more images")

# Thresholds, calibrated on gankit's own runs (docs/BENCHMARKS.md: the healthy default DCGAN keeps
# D's margin std under 0.07 over 10 log steps; a collapsed ring GAN has diversity near 0.01).
D_WINS_FAKE = 0.05  # D(G(z)) below this ...
D_WINS_REAL = 0.8  # ... and D(x) above this: D rejects the fakes with near certainty
GRAD_COLLAPSE = 0.1  # G's gradient norm below this share of its peak so far
DIVERSITY_LOW = 0.5  # samples less than half as spread out as real data
DIVERSITY_DROP = 0.6  # or diversity fell below this share of its best so far
COVERAGE_LOW = 0.75  # fewer than this share of the known modes or classes hit
# Known 2-D modes are counted from high-quality samples only; while fewer than this share of the
# samples are near any mode (early training, or a G hopping between modes), a low count means
# "not on the modes yet", not "collapsed onto a few of them" (the benchmark's healthy runs showed it).
HQ_FOR_COVERAGE = 0.5
OSCILLATION = 0.15  # std of D(x) - D(G(z)) over the window
DRIFT = 0.15  # rise of D(x) - D(G(z)) per 1000 steps, with the margin already above 0.5
WINDOW = 10  # log records the oscillation and drift are measured over
SMALL_DATA = 20_000  # fewer real images than this: D can memorise them (ADA's automatic threshold)
OVERFIT_REAL = 0.8  # D(x) above this ...
OVERFIT_MARGIN = 0.6  # ... and this far above D(G(z)): D separates the real set from G's outright
ADA_CAP = 0.99  # ADA's p at (or next to) 1: it cannot augment more
PATIENCE = 3  # consecutive records a condition must hold before it is reported


@dataclass(frozen=True)
class Finding:
    """A failure seen at ``step``: what is happening, in one sentence, and what to try."""

    kind: str
    step: int
    message: str

    def line(self) -> str:
        return f"step {self.step}: {FAILURES[self.kind].title}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "event": "warning", **asdict(self)}


# --------------------------------------------------------------------------- rules over records


def _series(records: list[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r[key])) for r in records
            if key in r and r[key] is not None and math.isfinite(float(r[key]))]


def _diminished_gradient(recs: list[dict[str, Any]], probabilities: bool, minimax: bool) -> str | None:
    if not probabilities:
        return None  # Wasserstein and hinge scores are not probabilities: no "D wins" reading
    train = [r for r in recs if "d_fake" in r]
    last = train[-PATIENCE:]
    if len(last) < PATIENCE:
        return None
    if not all(r["d_fake"] < D_WINS_FAKE and r["d_real"] > D_WINS_REAL for r in last):
        return None
    grads = [g for _, g in _series(train, "grad_g")]
    d_fake = last[-1]["d_fake"]
    if minimax:  # its gradient is D(G(z)) itself (gankit.losses.g_loss_minimax)
        return (f"D rejects G's samples with near certainty (D(G(z)) = {d_fake:.3f}) and the minimax "
                f"loss's gradient is proportional to D(G(z)), so G has almost nothing to learn from")
    if len(grads) >= PATIENCE and max(grads) > 0 and grads[-1] < GRAD_COLLAPSE * max(grads):
        return (f"D rejects G's samples with near certainty (D(G(z)) = {d_fake:.3f}) and G's gradient "
                f"norm has fallen to {100 * grads[-1] / max(grads):.0f}% of its peak: G is barely "
                f"learning")
    return None


def _mode_collapse(recs: list[dict[str, Any]]) -> str | None:
    div = _series(recs, "diversity")
    # With known modes (2-D data), samples that are mostly near none of them are "not on the data
    # yet" (a freshly initialised G is one small blob; it then sweeps towards the data as a thin
    # band): their low variety is G still learning, not G collapsing. Collapse is variety lost
    # *on* the data, which the coverage rule below (and these rules, once hq is up) catch.
    probes = [r for r in recs if "diversity" in r]
    off_data = bool(probes) and probes[-1].get("hq", 1.0) < HQ_FOR_COVERAGE
    if len(div) >= 2 and not off_data:
        best = max(v for _, v in div)
        recent = [v for _, v in div[-2:]]
        if all(v < DIVERSITY_LOW for v in recent):
            return (f"G's samples are only {recent[-1]:.0%} as varied as the real data (mean pairwise "
                    f"distance in feature space): it is producing few distinct outputs")
        if best > 0 and all(v < DIVERSITY_DROP * best for v in recent) and div[-1][0] > div[0][0]:
            return (f"the variety of G's samples fell to {recent[-1]:.0%} of the real data's, from "
                    f"{best:.0%} earlier: G is narrowing onto fewer outputs")
    for key, total_key, what in (("modes", "modes_total", "modes"), ("classes", "classes_total", "classes")):
        cov = [r for r in recs if key in r and total_key in r]
        if len(cov) >= 2 and all(r[key] < COVERAGE_LOW * r[total_key] and r.get("hq", 1.0) >= HQ_FOR_COVERAGE
                                 for r in cov[-2:]):
            r = cov[-1]
            return f"G's samples cover only {r[key]:.0f} of the {r[total_key]:.0f} {what} of the data"
    return None


def _non_convergence(recs: list[dict[str, Any]]) -> str | None:
    train = [r for r in recs if "d_fake" in r and "d_real" in r]
    if len(train) < WINDOW:
        return None
    window = train[-WINDOW:]
    steps = np.array([r["step"] for r in window], float)
    gap = np.array([r["d_real"] - r["d_fake"] for r in window], float)
    if not np.isfinite(gap).all():
        return None
    osc = float(gap.std())
    if osc > OSCILLATION:
        return (f"D's margin D(x) - D(G(z)) swings by {osc:.2f} (std over the last {WINDOW} log steps) "
                f"instead of settling: the two networks are circling each other, not converging")
    slope = float(np.polyfit(steps, gap, 1)[0]) * 1000 if np.ptp(steps) > 0 else 0.0
    if slope > DRIFT and gap.mean() > 0.5:
        return (f"D's margin D(x) - D(G(z)) keeps growing ({slope:+.2f} per 1000 steps, now "
                f"{gap[-1]:.2f}): D is pulling away from G instead of the game reaching equilibrium")
    return None


def _augmentation(recs: list[dict[str, Any]], diffaugment: bool) -> float | None:
    """How much D's inputs are augmented: ADA's last logged p, 1.0 for DiffAugment (every op on
    every sample), None for no augmentation."""
    p = [v for _, v in _series(recs, "ada_p")]
    return p[-1] if p else (1.0 if diffaugment else None)


def _overfitting(recs: list[dict[str, Any]], probabilities: bool, data_size: int | None,
                 augment: float | None) -> str | None:
    """D separates a small real set from G's samples outright, with no augmentation or with ADA's
    p at its cap: it is memorising the set (Karras et al. 2020, Fig. 1)."""
    if not probabilities or data_size is None or data_size >= SMALL_DATA:
        return None
    if augment is not None and augment < ADA_CAP:
        return None  # augmentation on and still able to rise: it is doing the work
    last = [r for r in recs if "d_fake" in r and "d_real" in r][-PATIENCE:]
    if len(last) < PATIENCE or not all(r["d_real"] > OVERFIT_REAL and r["d_real"] - r["d_fake"] > OVERFIT_MARGIN
                                       for r in last):
        return None
    r = last[-1]
    seen = (f"D is sure of the real images (D(x) = {r['d_real']:.2f}) and rejects G's (D(G(z)) = "
            f"{r['d_fake']:.2f}) on a set of only {data_size:,} images")
    if augment is None:
        return (f"{seen}, shown without augmentation: it is memorising them, and its feedback to G "
                f"degrades. Try {FAILURES['overfitting'].cures}")
    return (f"{seen}, although the augmentation is at its cap (p = {augment:.2f}): it memorises "
            f"them still. Try {AT_CAP_CURES}")


def check(records: list[dict[str, Any]], loss: str = "nonsaturating", data_size: int | None = None,
          diffaugment: bool = False, cures: dict[str, str] | None = None) -> list[Finding]:
    """The failures visible at the last of ``records`` (metrics.jsonl lines up to now).

    ``data_size``: the number of real images (None: not known, or not images); ``diffaugment``:
    whether D's inputs are always augmented. On a small unaugmented set the cures name
    augmentation first. ``cures``: a task's own cures of a failure, in place of the catalogue's
    (whose flags are the image GAN's: ``Task.cures``)."""
    if not records:
        return []
    from gankit.losses import LOSSES

    probabilities = LOSSES.get(loss).probabilities if loss in LOSSES else True
    step = int(records[-1]["step"])
    augment = _augmentation(records, diffaugment)
    small_bare = data_size is not None and data_size < SMALL_DATA and augment is None
    found = []
    for kind, message in (
        ("diminished_gradient", _diminished_gradient(records, probabilities, loss == "minimax")),
        ("mode_collapse", _mode_collapse(records)),
        ("non_convergence", _non_convergence(records)),
    ):
        if message:
            try_ = (cures or {}).get(kind) or FAILURES[kind].cures
            if small_bare and kind != "mode_collapse":  # D wins by memorising: augment first
                try_ = f"{AUGMENT_FIRST}, then {try_}"
            found.append(Finding(kind, step, f"{message}. Try {try_}."))
    overfit = _overfitting(records, probabilities, data_size, augment)
    if overfit:
        found.append(Finding("overfitting", step, f"{overfit}."))
    return found


CLEAR = WINDOW  # records in a row without a failure before its episode is over: a reading that
# hovers at a threshold (D's margin drifting at +0.14 then +0.16 per 1000 steps) is one episode, reported
# once, not one warning each time it crosses (a 1,200-s next-frame run gave 13 warnings of one drift)
WARMUP = 0.1  # no verdicts in the first tenth of a run: every GAN starts out collapsed and lopsided
# (of its steps, or of its --max-time when that comes first: a run stopped by its time budget has
# --steps far beyond what it will reach)


class Watcher:
    """Feeds records to ``check`` as they arrive and reports each failure when it *starts*
    (again after it has been absent for ``CLEAR`` records in a row), not at every log step while it
    lasts. ``active`` is what the last record shows (the doctor's "still present"). Silent during the first
    ``WARMUP`` share of ``steps``: at initialisation G's samples are a blob and D wins easily.

    The rules read only the last few records of each kind and a few running extremes (the peak
    of G's gradient norm, the first and the best diversity), so ``check`` is given just those:
    constant work per record however long the run, with the verdicts of the whole history."""

    def __init__(self, loss: str, steps: int, data_size: int | None = None, diffaugment: bool = False,
                 max_time: float = 0.0, cures: dict[str, str] | None = None) -> None:
        self.loss, self.data_size, self.diffaugment, self.cures = loss, data_size, diffaugment, cures
        self.warmup = int(WARMUP * steps)  # the warm-up's last step ...
        self.warmup_time = WARMUP * max_time  # ... or its training seconds, when the run has a time budget
        self.records: list[dict[str, Any]] = []  # everything added, warm-up included
        self.active: set[str] = set()  # the failures the last check found
        self._absent: dict[str, int] = {}  # the failures reported and not over: checks since last found
        self._reset()

    def _reset(self) -> None:
        self._time = 0.0  # the training time of the newest record that gave one (probe records do not)
        self._n = 0  # records past the warm-up so far: their order
        self._tails: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._extremes: dict[str, tuple[int, dict[str, Any]]] = {}

    def _keep(self, record: dict[str, Any]) -> None:
        i, self._n = self._n, self._n + 1
        # the last WINDOW training records (oscillation, drift, D's confidence, G's last gradient),
        # the last 2 diversity and coverage readings (collapse needs two in a row)
        for kind, key, n in (("train", "d_fake", WINDOW), ("ada", "ada_p", 1), ("diversity", "diversity", 2),
                             ("modes", "modes_total", 2), ("classes", "classes_total", 2)):
            if key in record and (kind != "diversity" or _finite(record[key]) is not None):
                tail = self._tails.setdefault(kind, [])
                tail.append((i, record))
                del tail[:-n]
        for key in ("grad_g", "diversity"):  # running peaks
            v = _finite(record.get(key))
            best = self._extremes.get(key)
            if v is not None and (best is None or v > float(best[1][key])):
                self._extremes[key] = (i, record)
        if _finite(record.get("diversity")) is not None and "first_diversity" not in self._extremes:
            self._extremes["first_diversity"] = (i, record)

    def _summary(self) -> list[dict[str, Any]]:
        kept = {i: r for tail in self._tails.values() for i, r in tail}
        kept.update(dict(self._extremes.values()))
        return [kept[i] for i in sorted(kept)]

    def _warming_up(self, record: dict[str, Any]) -> bool:
        t = _finite(record.get("time"))
        self._time = self._time if t is None else t
        return int(record["step"]) <= self.warmup and not 0 < self.warmup_time <= self._time

    def add(self, record: dict[str, Any]) -> list[Finding]:
        self.records.append(record)
        if self._warming_up(record):
            return []
        return self._check(record)

    def _check(self, record: dict[str, Any]) -> list[Finding]:
        self._keep(record)
        found = check(self._summary(), self.loss, self.data_size, self.diffaugment, self.cures)
        self.active = {f.kind for f in found}
        new = [f for f in found if f.kind not in self._absent]
        self._absent = {k: n + 1 for k, n in self._absent.items() if n + 1 < CLEAR} | dict.fromkeys(self.active, 0)
        return new

    def truncate_after(self, step: int) -> None:
        """Forget the records after ``step`` (a rollback): the rules, and the episodes under way, are
        those of the history up to it (its warnings were kept; later ones were dropped with their
        records, so a failure that starts again is reported again)."""
        self.records = [r for r in self.records if int(r["step"]) <= step]
        self._reset()
        self.active, self._absent = set(), {}
        for r in self.records:
            if not self._warming_up(r):
                self._check(r)


def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _data_size(run: RunDir) -> int | None:
    """The number of real images the run trains on, as its newest checkpoint's state.json
    records it (``data_size``); None before the first checkpoint, or for runs saved without it."""
    import json

    from gankit.checkpoint import MAX_STATE_BYTES, STATE
    from gankit.errors import GankitError
    from gankit.rundir import resolve_last
    from gankit.validate import read_regular

    last = resolve_last(run.checkpoints_dir)
    try:
        size = json.loads(read_regular(last / STATE, MAX_STATE_BYTES))["data_size"] if last else None
    except (OSError, ValueError, KeyError, TypeError, RecursionError, GankitError):
        return None
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def diagnose_run(run_dir: str | Path | RunDir, cures: dict[str, str] | None = None,
                 ) -> tuple[list[Finding], list[dict[str, Any]], dict[str, Any]]:
    """Replay a run's metrics.jsonl through the same rules: (findings as they started, the run's
    events such as rollbacks, a summary of the last signals). ``cures``: the run's task's own
    (``Task.cures``), as the live warnings named them."""
    run = RunDir(run_dir)
    cfg = run.config()
    every = run.records()  # a line cut short by a kill is skipped
    records = [r for r in every if "event" not in r]
    events = [r for r in every if "event" in r]
    watcher = Watcher(cfg.train.loss, cfg.train.steps, _data_size(run), bool(cfg.reg.diffaugment),
                      cfg.train.max_time, cures)
    findings = [f for rec in records for f in watcher.add(rec)]
    last: dict[str, Any] = {}
    for rec in records:
        last.update({k: v for k, v in rec.items() if k != "step"})
        last["step"] = rec["step"]
    return findings, [e for e in events if e.get("event") != "warning"], last | {"active": sorted(watcher.active)}


# --------------------------------------------------------------------------- signals from the networks


def mean_pairwise_distance(x: Tensor) -> float:
    """Mean Euclidean distance between all pairs of rows of x (n, d)."""
    x = x.double().flatten(1)
    n = x.shape[0]
    d = torch.cdist(x, x)
    return float(d.sum() / (n * (n - 1)))


def mean_group_distance(groups: list[Tensor]) -> float:
    """The mean over groups of each group's mean pairwise distance (each group (n >= 2, ...): rows of
    one condition, say a caption's images): the variety within a condition, whatever the variety
    between conditions."""
    return sum(mean_pairwise_distance(g) for g in groups) / len(groups)


def pooled_pixels(x: Tensor) -> Tensor:
    """Images (N, C, H, W) average-pooled to at most 16x16: the features the diversity of images
    no classifier reads is measured in (their layout and tones, not their pixel noise)."""
    h, w = x.shape[-2:]
    k = max(1, math.ceil(max(h, w) / 16))
    return nn.functional.avg_pool2d(x.float(), k, ceil_mode=True)


class Probe:
    """Measures G's diversity, and its mode or class coverage where the data make that possible,
    at fixed latents (the same samples every time, so changes are G's, not the noise's).

    What the data are known to be comes from their traits (``InMemoryData.traits``), never from
    their name: a 2-D mixture's modes are counted; Fashion-MNIST items at 1x28x28 are read by the
    shipped classifier (features and classes); other images are pixels average-pooled to at most
    16x16, and 2-D points their own coordinates."""

    N = 512

    def __init__(self, traits: DataTraits, shape: DataShape, real: Tensor, z: Tensor,
                 y: Tensor | None = None, device: torch.device | str = "cpu") -> None:
        if not isinstance(traits, DataTraits):
            raise TypeError(f"Probe takes the data's traits (data.traits), not {type(traits).__name__}")
        self.shape, self.z, self.device = shape, z[: self.N].to(device), device
        self.y = None if y is None else y[: self.N].to(device)  # a conditional G's labels
        self.modes = traits.modes
        self.classifier = None
        if shape.is_image and shape.dims == (1, 28, 28) and traits.fmnist_classifier:
            from gankit.metrics.features import get_extractor

            self.classifier = get_extractor("fmnist", device)
        self.real_diversity = mean_pairwise_distance(self.features(real[: self.N].to(device))[0])

    @torch.no_grad()
    def features(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        if self.classifier is not None:
            return self.classifier.features_and_logits(x.float())
        if self.shape.is_image:
            return pooled_pixels(x), None
        return x.float(), None

    @torch.no_grad()
    def measure(self, G: nn.Module) -> dict[str, float]:
        from gankit.sampling import generate

        fake = generate(G, self.z, self.y)  # (N, *dims), eval mode
        feats, logits = self.features(fake)
        out = {"diversity": round(mean_pairwise_distance(feats) / max(self.real_diversity, 1e-12), 4)}
        if self.modes is not None:
            from gankit.metrics.scores import modes_2d

            centers = self.modes.centers
            modes, hq = modes_2d(fake.float().cpu().numpy(), np.asarray(centers), self.modes.std)
            out |= {"modes": modes, "modes_total": len(centers), "hq": round(hq, 4)}
        if logits is not None:
            out |= {"classes": int(logits.argmax(1).unique().numel()), "classes_total": logits.shape[1]}
        return out


def grad_norm(module: nn.Module) -> Tensor:
    """The L2 norm of all of ``module``'s gradients, as a 0-dim tensor on the device (no host sync)."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return torch.zeros(())
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
