"""The failure rules on hand-made metric records, the live warnings of a real run, `gankit
doctor`, and the rollback after a divergence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit.api import train_config
from gankit.cli import main as cli_main
from gankit.diagnosis import CLEAR, FAILURES, Watcher, check, diagnose_run, mean_pairwise_distance
from gankit.train.lifecycle import TrainingDiverged
from tests.conftest import tiny_config
from tests.hooks import NaNLoss


def recs(n: int, **series: object) -> list[dict[str, float]]:
    """n training records, 25 steps apart; each keyword is a constant or a function of i."""
    out = []
    for i in range(n):
        r: dict[str, float] = {"step": 25 * (i + 1)}
        for k, v in series.items():
            r[k] = v(i) if callable(v) else v  # type: ignore[assignment]
        out.append(r)
    return out


HEALTHY = {"d_real": 0.62, "d_fake": 0.35, "grad_g": 1.0, "loss_d": 1.2, "loss_g": 1.1}


def kinds(found: list) -> set[str]:  # type: ignore[type-arg]
    return {f.kind for f in found}


def test_a_healthy_run_raises_nothing() -> None:
    rs = recs(20, **HEALTHY) + [{"step": 500, "diversity": 0.9, "modes": 8, "modes_total": 8}]
    assert check(rs) == []


def test_diminished_gradient_when_d_wins_and_g_gradient_collapses() -> None:
    rs = recs(10, d_real=0.6, d_fake=0.4, grad_g=2.0) + \
        [{"step": 300 + 25 * i, "d_real": 0.99, "d_fake": 0.01, "grad_g": 0.06} for i in range(3)]
    (f,) = [f for f in check(rs) if f.kind == "diminished_gradient"]
    assert "3% of its peak" in f.message
    assert "--loss nonsaturating" in f.message  # the cures are named
    # D winning while G's gradient stays strong (non-saturating loss) is not a diminished gradient
    strong = rs[:10] + [{"step": 300 + 25 * i, "d_real": 0.99, "d_fake": 0.01, "grad_g": 2.0} for i in range(3)]
    assert "diminished_gradient" not in kinds(check(strong))
    # under the minimax loss the gradient is D(G(z)) itself: D winning is enough
    assert "diminished_gradient" in kinds(check(strong, loss="minimax"))
    # Wasserstein scores are not probabilities: no such reading
    assert "diminished_gradient" not in kinds(check(rs, loss="wgan-gp"))


def test_mode_collapse_from_diversity_and_from_coverage() -> None:
    low = [{"step": 250, "diversity": 0.2}, {"step": 500, "diversity": 0.15}]
    (f,) = check(low)
    assert f.kind == "mode_collapse" and "15%" in f.message and "--pack 4" in f.message
    assert check(low[:1]) == []  # one probe is not enough
    fell = [{"step": 250, "diversity": 1.0}, {"step": 500, "diversity": 0.55}, {"step": 750, "diversity": 0.52}]
    assert "fell to 52%" in check(fell)[0].message
    cov = [{"step": 250, "diversity": 0.9, "modes": 3, "modes_total": 8},
           {"step": 500, "diversity": 0.9, "modes": 2, "modes_total": 8}]
    assert "cover only 2 of the 8 modes" in check(cov)[0].message
    # 2 of 8 modes with most samples near one of them: collapse; with few near any: not yet sharp
    on = [r | {"hq": 0.9} for r in cov]
    off = [r | {"hq": 0.2} for r in cov]
    assert kinds(check(on)) == {"mode_collapse"} and check(off) == []
    classes = [{"step": s, "diversity": 0.9, "classes": 6, "classes_total": 10} for s in (250, 500)]
    assert "6 of the 10 classes" in check(classes)[0].message


def test_low_variety_off_the_data_is_learning_not_collapse() -> None:
    """A ring run's first probes (gankit's own 2,000-step run): G is a thin band sweeping towards
    the circle, 18% as varied as the data but with no sample near any mode. That is G still
    learning; once its samples are on the data, the same low variety is collapse."""
    sweeping = [{"step": 250, "diversity": 0.28, "modes": 0, "modes_total": 8, "hq": 0.0},
                {"step": 500, "diversity": 0.18, "modes": 0, "modes_total": 8, "hq": 0.0}]
    assert check(sweeping) == []
    on_one_mode = [r | {"modes": 1, "hq": 0.95} for r in sweeping]
    assert kinds(check(on_one_mode)) == {"mode_collapse"}


def test_non_convergence_oscillation_and_drift() -> None:
    swing = recs(12, d_real=lambda i: 0.9 if i % 2 else 0.5, d_fake=lambda i: 0.1 if i % 2 else 0.5)
    assert "swings by" in check(swing)[0].message
    drift = recs(12, d_real=lambda i: 0.7 + 0.02 * i, d_fake=lambda i: 0.2 - 0.01 * i)
    (f,) = [f for f in check(drift) if f.kind == "non_convergence"]
    assert "keeps growing" in f.message and "--r1" in f.message


def test_watcher_reports_a_failure_when_it_starts_and_again_after_it_clears() -> None:
    """One warning per episode: a failure that comes back within CLEAR records of its last reading is
    the same episode (a reading hovering at a threshold); absent for CLEAR records in a row, it is over,
    and reported again when it returns. ``active`` follows the last record all the same."""
    w = Watcher("nonsaturating", steps=1000)
    probes = [0.9, 0.2, 0.2, 0.2, 0.9, 0.9, 0.2, 0.2, *[0.9] * CLEAR, 0.2, 0.2]
    got, active = [], []
    for i, d in enumerate(probes):
        got.append(len(w.add({"step": 100 * (i + 1), "diversity": d})))
        active.append(bool(w.active))
    # collapse (two low probes in a row) found at the 3rd probe; gone for 3 (fewer than CLEAR) and
    # back: not reported again; then gone for CLEAR probes: over, so its return is a new warning
    assert got == [0, 0, 1, 0, 0, 0, 0, 0, *[0] * CLEAR, 0, 1]
    assert active[2:8] == [True, True, False, False, False, True] and not any(active[8:8 + CLEAR])
    # D's margin climbing in steps (0.004 a record for 5 records, flat for 5): the drift rule's slope
    # crosses its threshold and falls back again and again, one episode warned once
    flicker, g, found, starts = Watcher("nonsaturating", steps=100), 0.6, [], 0
    for i in range(200):
        g += 0.004 if (i // 5) % 2 == 0 else 0.0
        was = "non_convergence" in flicker.active
        found += [f.kind for f in flicker.add({"step": 10 * i, "d_real": 0.5 + g / 2, "d_fake": 0.5 - g / 2})]
        starts += "non_convergence" in flicker.active and not was
    assert starts > 10 and found == ["non_convergence"]
    w2 = Watcher("nonsaturating", steps=10_000)  # warm-up: the first 1000 steps say nothing
    assert all(w2.add({"step": s, "diversity": 0.1}) == [] for s in (250, 500, 750, 1000))
    assert len(w2.add({"step": 1250, "diversity": 0.1})) == 0  # one probe after the warm-up
    assert len(w2.add({"step": 1500, "diversity": 0.1})) == 1


def test_a_run_with_a_time_budget_is_warmed_up_after_a_tenth_of_it() -> None:
    # --steps 1000000 --max-time 1200 (the benchmarks' runs): a tenth of the steps is never reached,
    # a tenth of the time is (120 s); probe records carry no time: the last log record's counts
    w = Watcher("nonsaturating", steps=1_000_000, max_time=1200)
    assert w.add({"step": 100, "time": 60.0, "d_real": 0.6, "d_fake": 0.4}) == []
    assert w.add({"step": 200, "diversity": 0.0}) == [] and w.add({"step": 250, "diversity": 0.0}) == []
    assert w.add({"step": 300, "time": 121.0, "d_real": 0.6, "d_fake": 0.4}) == []  # warm from here
    assert w.add({"step": 350, "diversity": 0.0}) == []  # one probe after the warm-up
    assert [f.kind for f in w.add({"step": 400, "diversity": 0.0})] == ["mode_collapse"]
    w.truncate_after(300)  # a rollback replays the records kept, with their times
    assert w.add({"step": 350, "diversity": 0.0}) == [] and len(w.add({"step": 400, "diversity": 0.0})) == 1
    # without a time budget the steps alone end the warm-up, as before
    w2 = Watcher("nonsaturating", steps=1_000_000)
    assert all(w2.add({"step": s, "time": 1e6, "diversity": 0.0}) == [] for s in (250, 500, 750))


def test_a_tasks_own_cures_replace_the_catalogues() -> None:
    low = [{"step": 250, "diversity": 0.2}, {"step": 500, "diversity": 0.15}]
    (f,) = check(low, cures={"mode_collapse": "a lower --adv-weight"})
    assert f.message.endswith("Try a lower --adv-weight.") and "--pack" not in f.message
    (g,) = check(low, cures={"non_convergence": "lower rates"})  # not this failure's: the catalogue's
    assert "--pack 4" in g.message


@pytest.mark.parametrize("seed", range(4))
def test_watcher_gives_the_verdicts_of_the_whole_history(seed: int) -> None:
    # The Watcher hands `check` only the records the rules read; on a random walk of signals
    # (log records every 25 steps, probe readings every 250, some with a gradient spike) its
    # verdicts equal those of `check` over every record so far, and after a rollback too.
    import random

    rng = random.Random(seed)
    w = Watcher("nonsaturating", steps=6000)
    history: list[dict[str, float]] = []
    d_real, d_fake, grad, div = 0.6, 0.4, 1.0, 1.0
    for step in range(25, 6001, 25):
        d_real = min(0.999, max(0.001, d_real + rng.gauss(0, 0.08)))
        d_fake = min(0.999, max(0.001, d_fake + rng.gauss(0, 0.08)))
        grad = max(1e-4, grad * rng.choice([0.5, 0.9, 1.0, 1.1, 2.0]))
        rec: dict[str, float] = {"step": step, "d_real": d_real, "d_fake": d_fake, "grad_g": grad}
        if step % 250 == 0:
            div = max(0.01, div + rng.gauss(0, 0.2))
            rec |= {"diversity": div, "modes": rng.randint(0, 8), "modes_total": 8}
        w.add(rec)
        history.append(rec)
        full = {f.kind for f in check([r for r in history if r["step"] > w.warmup])}
        assert w.active == full, step
        if step == 3000:  # roll back to step 2000 and replay the same records
            w.truncate_after(2000)
            history = [r for r in history if r["step"] <= 2000]
            assert [r["step"] for r in w.records] == [r["step"] for r in history]


def test_mean_pairwise_distance_by_hand() -> None:
    x = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])  # distances 5, 0, 5 -> mean 10/3
    assert mean_pairwise_distance(x) == pytest.approx(10 / 3)


# The run: a folder of 1,432 images at 32 px, D(x) = 0.95 and D(G(z)) = 0.07, D's margin growing.
MEMORISING = {"d_real": lambda i: 0.86 + 0.01 * i, "d_fake": lambda i: 0.18 - 0.01 * i, "grad_g": 1.0}


def test_d_memorising_a_small_bare_set_names_augmentation_first() -> None:
    rs = recs(12, **MEMORISING)
    found = {f.kind: f for f in check(rs, data_size=1432)}
    assert set(found) == {"overfitting", "non_convergence"}
    over = found["overfitting"].message
    assert "1,432 images" in over and "D(x) = 0.97" in over and over.index("Try --ada") > 0
    assert found["non_convergence"].message.split("Try ")[1].startswith("--ada or --diffaugment")
    # a large set (Fashion-MNIST's 60,000), or one of unknown size: no overfitting verdict, the
    # usual cures first
    for size in (60_000, None):
        found = {f.kind: f for f in check(rs, data_size=size)}
        assert set(found) == {"non_convergence"}
        assert found["non_convergence"].message.split("Try ")[1].startswith("lower learning rates")


def test_augmentation_at_work_is_left_alone_and_at_its_cap_named() -> None:
    rising = recs(12, **MEMORISING, ada_p=lambda i: 0.05 * i)  # p still below its cap
    found = {f.kind: f for f in check(rising, data_size=1432)}
    assert "overfitting" not in found
    assert found["non_convergence"].message.split("Try ")[1].startswith("lower learning rates")
    capped = recs(12, **MEMORISING, ada_p=1.0)
    (f,) = [f for f in check(capped, data_size=1432) if f.kind == "overfitting"]
    assert "cap (p = 1.00)" in f.message and "--diffaugment" in f.message
    (f,) = [f for f in check(recs(12, **MEMORISING), data_size=1432, diffaugment=True) if f.kind == "overfitting"]
    assert "cap" in f.message
    # a healthy small run raises nothing
    assert check(recs(12, **HEALTHY), data_size=1432) == []


def test_watcher_reads_adas_last_p() -> None:
    w = Watcher("nonsaturating", steps=300, data_size=1432)
    out = [f.kind for i, r in enumerate(recs(12, **MEMORISING, ada_p=lambda i: 1.0 if i > 8 else 0.3))
           for f in w.add(r)]
    assert out.count("overfitting") == 1 and "overfitting" in w.active


def test_every_failure_names_cures() -> None:
    assert set(FAILURES) == {"diminished_gradient", "mode_collapse", "non_convergence", "divergence",
                             "overfitting"}
    assert all(f.cures.startswith("--") or "--" in f.cures for f in FAILURES.values())


def test_a_collapsing_run_is_warned_live_and_by_doctor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Five D steps per G step at a high learning rate: G is driven onto one mode of the ring (by
    # step 400 over half its samples sit on a mode, 1 or 2 of the 8, at 13% of the data's variety).
    run = train_config(tiny_config(tmp_path / "r", steps=400, d_steps=5, lr_g=3e-3, lr_d=3e-3,
                                   log_every=50, diagnose_every=100, checkpoint_every=400))
    warnings = [r for r in run.history if r.get("event") == "warning"]
    assert any(w["kind"] == "mode_collapse" for w in warnings), run.history[-3:]
    assert "diversity" in run.history[-1] or any("diversity" in r for r in run.history)
    capsys.readouterr()
    assert cli_main(["doctor", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "mode collapse" in out and "Try --pack 4" in out and "D(x) =" in out
    findings, _, _ = diagnose_run(tmp_path / "r")
    assert [f.step for f in findings if f.kind == "mode_collapse"] == \
        [w["step"] for w in warnings if w["kind"] == "mode_collapse"]  # doctor == live
    assert "Diagnosis" in (tmp_path / "r" / "report.html").read_text()


def test_doctor_on_a_missing_run_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["doctor", str(tmp_path / "nope")]) == 2
    assert "not a gankit run" in capsys.readouterr().err


def test_divergence_rolls_back_to_the_last_checkpoint_and_halves_the_learning_rates(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = NaNLoss(lambda n: n == 23)  # once, at step 23
    run = train_config(tiny_config(tmp_path / "r", steps=40, log_every=10, checkpoint_every=10), hooks=[hook])
    assert run.step == 40
    (event,) = [r for r in run.history if r.get("event") == "rollback"]
    assert event["step"] == 20 and event["diverged_at"] == 23
    assert event["lr_g"] == pytest.approx(0.5e-3) and event["lr_d"] == pytest.approx(0.5e-3)
    steps = [r["step"] for r in run.history if "loss_d" in r]
    assert steps == [10, 20, 30, 40]  # the diverged stretch was dropped and trained again
    from gankit.checkpoint import load_checkpoint

    ck = load_checkpoint(tmp_path / "r")
    assert ck.meta["optim"]["opt_G"]["param_groups"][0]["lr"] == pytest.approx(0.5e-3)


def test_divergence_without_a_checkpoint_stops_with_the_step(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    hook = NaNLoss(lambda n: True)
    with pytest.raises(TrainingDiverged, match="at step 1"):
        train_config(tiny_config(tmp_path / "r", steps=40, log_every=10, checkpoint_every=20), hooks=[hook])


def test_divergence_after_the_last_rollback_stops_and_says_what_was_tried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = NaNLoss(lambda n: n > 10)  # diverges for good after step 10
    with pytest.raises(TrainingDiverged, match=r"rolled back 3 time\(s\), halving the learning rates"):
        train_config(tiny_config(tmp_path / "r", steps=40, log_every=10, checkpoint_every=10), hooks=[hook])


def test_a_rollback_halves_the_base_of_a_decaying_schedule(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    hook = NaNLoss(lambda n: n == 23)
    train_config(tiny_config(tmp_path / "r", steps=40, log_every=10, checkpoint_every=10, lr_decay_start=0.5), hooks=[hook])
    from gankit.checkpoint import load_checkpoint

    group = load_checkpoint(tmp_path / "r").meta["optim"]["opt_G"]["param_groups"][0]
    assert group["base_lr"] == pytest.approx(0.5e-3)
    assert group["lr"] == pytest.approx(0.5e-3 * (1 - 19 / 20))  # the last step's rate, from the halved base


def test_probe_reads_the_data_traits() -> None:
    from gankit.data.fashion_mnist import FASHION_MNIST
    from gankit.data.toy import ring
    from gankit.diagnosis import Probe
    from gankit.models import DataShape

    data = ring()
    probe = Probe(data.traits, data.shape, data.batch(torch.arange(64)), torch.randn(64, 2))
    assert probe.modes is data.traits.modes and probe.classifier is None

    class AtTheCentres(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return data.traits.modes.centers[torch.arange(len(z)) % 8]  # type: ignore[union-attr]

    out = probe.measure(AtTheCentres())
    assert out["modes"] == 8 and out["modes_total"] == 8 and out["hq"] == 1.0
    images = torch.rand(16, 1, 28, 28) * 2 - 1
    assert Probe(FASHION_MNIST, DataShape((1, 28, 28)), images, torch.randn(16, 4)).classifier is not None
