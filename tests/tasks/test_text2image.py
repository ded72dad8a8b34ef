"""Text -> image (GAN-INT-CLS, Reed et al. 2016): the captioned data, its held-out splits and
metadata.jsonl folders, the encoder's install message, the losses against hand computations, the
attribute measurement from pixels, and ``gankit sample --text`` on a tiny trained run. (The task's
lifecycle tests are generated from the registry: tests/train/test_tasks.py.)"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.cli import main
from gankit.data.captioned import (
    HELDOUT_SPLITS,
    SIZES,
    captioned_fashion,
    compose,
    draw_items,
    heldout_wording,
    is_heldout_combo,
    load_captioned_folder,
)
from gankit.errors import GankitError
from gankit.losses.text2image import ca_kl, contrastive_loss, matching_aware_d_loss, mode_seeking
from gankit.metrics.text2image import measure
from gankit.models.text2image import CondAugment, TextNorm
from tests.conftest import needs_fmnist

HAS_TEXT = all(importlib.util.find_spec(m) is not None for m in ("all_minilm_l6_v2", "transformers"))
needs_text = pytest.mark.skipif(not HAS_TEXT, reason="the text extra is not installed (pip install 'gankit[text]')")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the module: the encoder is extracted, and the captions embedded, once."""
    return tmp_path_factory.mktemp("text-cache")


# --------------------------------------------------------------------------- the built-in set


@needs_fmnist
def test_the_captioned_set_is_deterministic_and_its_splits_keep_what_they_hold_out(tmp_path: Path) -> None:
    labels = torch.arange(2000) % 10
    a1, c1 = draw_items("train", labels)
    a2, c2 = draw_items("train", labels)
    assert torch.equal(a1, a2) and c1 == c2
    assert not any(heldout_wording(c) for c in c1)  # training sees no held-out word or template
    assert not bool(is_heldout_combo(*a1.unbind(1)).any())  # ... nor a held-out combination
    first = captioned_fashion("test-seen", cache_dir=tmp_path)
    again = captioned_fashion("test-seen", cache_dir=tmp_path)  # from the cache
    assert "from cache" in again.notes[0] and torch.equal(first.images, again.images)
    assert first.captions == again.captions and torch.equal(first.attrs, again.attrs)
    splits = {s: captioned_fashion(s, cache_dir=tmp_path) for s in HELDOUT_SPLITS}
    seen, combos, wordings = (splits[s] for s in HELDOUT_SPLITS)
    assert not bool(is_heldout_combo(*seen.attrs.unbind(1)).any())
    assert bool(is_heldout_combo(*combos.attrs.unbind(1)).all())
    assert not bool(is_heldout_combo(*wordings.attrs.unbind(1)).any())
    assert all(heldout_wording(c) for c in wordings.captions)
    assert not any(heldout_wording(c) for c in seen.captions + combos.captions)
    assert not set(wordings.captions) & set(c1)
    # the three test splits are different Fashion-MNIST test images
    held = [{bytes(x.numpy()) for x in s.images} for s in splits.values()]
    assert not (held[0] & held[1] or held[0] & held[2] or held[1] & held[2])
    assert first.captions[0] and first.images.dtype == torch.uint8 and first.images.shape[1:] == (1, 48, 48)


def test_attributes_read_from_synthetic_canvases_are_exact() -> None:
    # a textured square item, every position x size x brightness, composed as the data set is
    g = torch.Generator().manual_seed(0)
    item = (128 + torch.randint(0, 128, (1, 1, 28, 28), generator=g)).to(torch.uint8)
    grid = torch.cartesian_prod(torch.arange(9), torch.arange(2), torch.arange(2))
    pos, size, bright = grid.unbind(1)
    canvases = compose(item.expand(len(grid), -1, -1, -1), pos, size, bright)
    m = measure(canvases.float() / 127.5 - 1)
    assert torch.equal(m.position, pos) and torch.equal(m.size, size) and torch.equal(m.brightness, bright)
    extent = torch.maximum(m.box[:, 1] - m.box[:, 0], m.box[:, 3] - m.box[:, 2]) + 1
    assert torch.equal(extent, torch.tensor(SIZES)[size])
    # a stray faint pixel far away moves nothing; a blank canvas reads as the whole: large, dark, centre
    noisy = canvases.clone()
    noisy[:, :, 47, 47] = 40
    m2 = measure(noisy.float() / 127.5 - 1)
    assert torch.equal(m2.position, pos) and torch.equal(m2.size, size)
    blank = measure(-torch.ones(1, 1, 48, 48))
    assert (int(blank.position), int(blank.size), int(blank.brightness)) == (4, 1, 0)


@needs_fmnist
def test_attributes_of_the_real_canvases_read_back(tmp_path: Path) -> None:
    d = captioned_fashion("test-seen", cache_dir=tmp_path)
    m = measure(d.images.float() / 127.5 - 1)
    for got, k in ((m.position, 1), (m.size, 2), (m.brightness, 3)):
        assert (got == d.attrs[:, k]).float().mean() >= 0.995


# --------------------------------------------------------------------------- the losses


def test_the_matching_aware_d_loss_is_reeds() -> None:
    l_r, l_w, l_f = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 1.5]), torch.tensor([-3.0, 0.0])
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    # D ascends log s_r + (log(1 - s_w) + log(1 - s_f)) / 2 (Reed et al. 2016, Algorithm 1)
    by_hand = -(sum(math.log(sig(v)) for v in l_r.tolist()) / 2
                + 0.5 * (sum(math.log(1 - sig(v)) for v in l_w.tolist()) / 2
                         + sum(math.log(1 - sig(v)) for v in l_f.tolist()) / 2))
    assert float(matching_aware_d_loss(l_r, l_w, l_f)) == pytest.approx(by_hand, rel=1e-6)


def test_the_contrastive_term_is_xmc_gans_cross_entropy() -> None:
    # three images and captions in 2-D: cosines by hand, softmax over the batch at tau = 0.1
    image = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    text = torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    r = 1 / math.sqrt(2)
    cos = [[1.0, r, 0.0], [0.0, r, 1.0], [r, 1.0, r]]
    by_hand = sum(-math.log(math.exp(row[i] / 0.1) / sum(math.exp(c / 0.1) for c in row))
                  for i, row in enumerate(cos)) / 3
    assert float(contrastive_loss(image, text)) == pytest.approx(by_hand, rel=1e-5)
    # items 0 and 2 share one caption: neither counts the other as a wrong caption
    same = torch.tensor([[True, False, True], [False, True, False], [True, False, True]])
    cos_masked = [[cos[0][0], cos[0][1]], [cos[1][0], cos[1][1], cos[1][2]], [cos[2][1], cos[2][2]]]
    own = [cos[0][0], cos[1][1], cos[2][2]]
    masked = sum(-math.log(math.exp(o / 0.1) / sum(math.exp(c / 0.1) for c in row))
                 for o, row in zip(own, cos_masked, strict=True)) / 3
    assert float(contrastive_loss(image, text, same)) == pytest.approx(masked, rel=1e-5)
    # G's gradient pulls an image towards its own caption: image 1 (cosine 1/sqrt(2) to its own,
    # 1 to caption 2) turns towards caption 1 after a step, and the loss falls
    x = image.clone().requires_grad_(True)
    contrastive_loss(x, text).backward()
    stepped = image - 0.05 * x.grad
    cos_after = torch.nn.functional.cosine_similarity(stepped, text)
    assert float(cos_after[1]) > r
    assert float(contrastive_loss(stepped, text)) < by_hand


def test_the_mode_seeking_term_is_msgans_inverse_ratio_and_pushes_draws_apart() -> None:
    z_a, z_b = torch.zeros(2, 4), torch.full((2, 4), 2.0)  # mean |z_a - z_b| = 2
    a, b = torch.zeros(2, 1, 3, 3), torch.full((2, 1, 3, 3), 0.5)  # mean |a - b| = 0.5
    torch.testing.assert_close(mode_seeking(a, b, z_a, z_b), torch.tensor(1 / (0.25 + 1e-5)))
    # a G that ignores z: the same image twice, the term at its ceiling 1 / eps
    assert float(mode_seeking(a, a.clone(), z_a, z_b)) == pytest.approx(1e5)
    # its gradient moves the second draw away from the first, wherever it starts
    b = (a + 0.1 * torch.randn(a.shape, generator=torch.Generator().manual_seed(0))).requires_grad_()
    mode_seeking(a, b, z_a, z_b).backward()
    assert b.grad is not None
    assert torch.all(-b.grad * torch.sign(b.detach() - a) > 0)  # descending it widens |b - a| everywhere


def test_caption_groups_are_the_items_of_shared_captions() -> None:
    from gankit.tasks.caption_probe import caption_groups

    index = torch.tensor([0, 1, 2, 1, 3, 3, 3, 4, 1, 5])  # captions 1 and 3 have 3 items; 0, 2, 4, 5 one
    groups = caption_groups(index, k=5, m=2)
    assert [g.tolist() for g in groups] == [[1, 3], [4, 5]]  # at most m of each, in caption order
    assert [g.tolist() for g in caption_groups(index, k=1, m=8)] == [[1, 3, 8]]
    assert caption_groups(torch.arange(6)) == []  # one image per caption: nothing shared



def test_the_probe_embeds_each_shared_caption_once_and_measures_its_real_images() -> None:
    from types import SimpleNamespace

    from gankit.tasks.caption_probe import PROBE_DRAWS, CaptionProbe

    G = SimpleNamespace(latent_dim=4, cond_dim=2)  # noise() reads only these
    index = torch.tensor([0, 1, 2, 1, 3, 3, 4])  # captions 1 (items 1, 3) and 3 (items 4, 5) shared
    images = torch.zeros(7, 1, 16, 16, dtype=torch.uint8)  # all -1 once read as floats
    images[3], images[5] = 255, 255  # each shared caption: one image at -1, one at +1, 256 pixels apart
    asked: list[list[int]] = []

    def embed(rows: torch.Tensor) -> torch.Tensor:
        asked.append(rows.tolist())
        return torch.eye(len(rows), 384)

    probe = CaptionProbe.of(images, index, embed, G, "normal")  # type: ignore[arg-type]
    assert probe is not None and asked == [[1, 3]] and probe.phi.shape == (2, 384)
    assert probe.z.shape == (PROBE_DRAWS, 4) and probe.eps.shape == (PROBE_DRAWS, 2)
    assert abs(probe.real - (256 * 2.0**2) ** 0.5) < 1e-4  # the Euclidean distance of the two, 32
    assert CaptionProbe.of(images, torch.arange(7), embed, G, "normal") is None  # type: ignore[arg-type]

class DrawsOnePerCaption(torch.nn.Module):
    """A stand-in G(z, phi, eps) -> (images, mu, logvar): its image is the caption's, plus z's
    if it reads z at all."""

    def __init__(self, reads_z: bool) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.reads_z = reads_z

    def forward(self, z: torch.Tensor, phi: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        x = phi[:, :1, None, None].expand(-1, 1, 16, 16).clone()
        if self.reads_z:
            x = x + z[:, :1, None, None]
        return torch.tanh(self.scale * x), None, None


def test_the_probe_calls_a_g_that_ignores_its_noise_collapsed_however_varied_across_captions() -> None:
    from gankit.diagnosis import Watcher
    from gankit.tasks.caption_probe import PROBE_DRAWS, CaptionProbe
    from gankit.tasks.text2image import Text2ImageTask

    task = Text2ImageTask.__new__(Text2ImageTask)  # the probe's state alone, no data or networks
    g = torch.Generator().manual_seed(0)
    phi = torch.randn(6, 384, generator=g)  # six captions far apart: varied across captions
    task.caption_probe = CaptionProbe(phi, torch.randn(PROBE_DRAWS, 4, generator=g), torch.zeros(PROBE_DRAWS, 2), 1.0)
    task.G_ema = DrawsOnePerCaption(reads_z=False)
    assert task.probe() == {"diversity": 0.0}
    task.G_ema = DrawsOnePerCaption(reads_z=True)
    assert task.probe()["diversity"] > 0.5
    # the reading the diagnosis is given: two probes at 0 are mode collapse, with the task's cures
    w = Watcher("nonsaturating", steps=100, cures=Text2ImageTask.cures)
    found = [f for s in (20, 40) for f in w.add({"step": s, "diversity": 0.0})]
    assert [f.kind for f in found] == ["mode_collapse"] and "--mode-seeking" in found[0].message
    task.caption_probe = None  # no caption shared by two images (a folder): nothing to measure
    assert task.probe() == {}


def test_conditioning_augmentations_kl_is_the_closed_form() -> None:
    g = torch.Generator().manual_seed(1)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    sigma = (0.5 * logvar).exp()
    closed = torch.distributions.kl_divergence(torch.distributions.Normal(mu, sigma),
                                               torch.distributions.Normal(0.0, 1.0)).sum(1).mean()
    by_hand = sum(0.5 * (m * m + s * s - 1 - 2 * math.log(s)) for m, s in zip(mu.flatten().tolist(),
                                                                          sigma.flatten().tolist(), strict=True)) / 5
    assert float(ca_kl(mu, logvar)) == pytest.approx(float(closed), rel=1e-5)
    assert float(ca_kl(mu, logvar)) == pytest.approx(by_hand, rel=1e-5)
    assert float(ca_kl(torch.zeros(2, 4), torch.zeros(2, 4))) == 0.0
    ca = CondAugment(6, 3)
    phi, eps = torch.randn(4, 6, generator=g), torch.randn(4, 3, generator=g)
    c, m, lv = ca(phi, eps)
    assert torch.allclose(c, m + (0.5 * lv).exp() * eps)


# --------------------------------------------------------------------------- a folder of your own


def _folder(root: Path, lines: list[bytes], images: tuple[str, ...] = ("a.png", "sub/b.png", "c.png")) -> Path:
    for i, name in enumerate(images):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 24), 40 * (i + 1), np.uint8)).save(root / name)
    (root / "metadata.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return root


def test_a_metadata_jsonl_folder_loads_one_item_per_caption(tmp_path: Path) -> None:
    root = _folder(tmp_path / "mine", [
        json.dumps({"file_name": "a.png", "text": "a gray square"}).encode(),
        b"",  # blank lines are skipped
        json.dumps({"file_name": "sub/b.png", "text": "  a lighter   square "}).encode(),
        json.dumps({"file_name": "./a.png", "text": "the same square, said otherwise", "extra": 1}).encode(),
    ])
    d = load_captioned_folder(str(root), (16, 16), cache_dir=tmp_path / "cache")
    assert d.captions == ["a gray square", "a lighter square", "the same square, said otherwise"]
    assert d.images.shape == (3, 1, 16, 16) and d.attrs is None
    assert torch.equal(d.images[0], d.images[2]) and not torch.equal(d.images[0], d.images[1])
    assert any("1 images have no caption" in n for n in d.notes)  # c.png


@pytest.mark.parametrize(("line", "expected"), [
    (json.dumps({"file_name": "missing.png", "text": "x"}).encode(), "line 2: file_name 'missing.png' names no image"),
    (json.dumps({"file_name": "c.png", "text": "   "}).encode(), "line 2: the caption (\"text\") of 'c.png' is empty"),
    (b'{"file_name": "c.png", "text": "caf\xe9"}', "line 2: not UTF-8 text (byte 0xe9 at column 36)"),
    (b'{"file_name": "c.png", "text": }', "line 2: not valid JSON"),
    (json.dumps({"file": "c.png", "text": "x"}).encode(), 'line 2: needs an object with "file_name"'),
    (json.dumps({"file_name": "c.png", "text": 3}).encode(), 'line 2: "text" must be a string'),
])
def test_bad_metadata_is_one_line_naming_the_file_and_line(tmp_path: Path, line: bytes, expected: str) -> None:
    root = _folder(tmp_path / "mine", [json.dumps({"file_name": "a.png", "text": "fine"}).encode(), line])
    with pytest.raises(GankitError) as e:
        load_captioned_folder(str(root), (16, 16), cache_dir=tmp_path / "cache")
    assert expected in str(e.value) and "metadata.jsonl" in str(e.value) and "\n" not in str(e.value)


def test_a_caption_naming_an_unreadable_image_says_why(tmp_path: Path) -> None:
    root = _folder(tmp_path / "mine", [json.dumps({"file_name": "bad.png", "text": "x"}).encode()])
    (root / "bad.png").write_bytes(b"not a png")
    with pytest.raises(GankitError, match=r"line 1: file_name 'bad.png' was skipped: "):
        load_captioned_folder(str(root), (16, 16), cache_dir=tmp_path / "cache")


# --------------------------------------------------------------------------- the encoder


def test_without_the_text_extra_a_text_run_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "all_minilm_l6_v2", None)  # as if not installed: import fails
    code = main(["train", "--model", "gan-int-cls", "--data", "captioned-fashion", "--steps", "1",
                 "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'gankit[text]'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- sample --text, end to end


@needs_fmnist
@needs_text
def test_sample_text_end_to_end_on_a_tiny_run(tmp_path: Path, shared_cache: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.api import train_config
    from gankit.config import build_config

    run = tmp_path / "run"
    train_config(build_config(overrides={
        "model": "gan-int-cls", "data": "captioned-fashion", "caption_items": 64, "latent_dim": 8, "width": 8,
        "cond_dim": 8, "steps": 3, "batch_size": 8, "log_every": 1, "sample_every": 3, "checkpoint_every": 3,
        "precision": "fp32", "progress": False, "cache_dir": str(shared_cache), "out": str(run)}))
    grid = sorted((run / "samples").iterdir())[-1]
    with Image.open(grid) as im:  # 8 captions x 8 noises, named on the left
        assert im.size[1] == 8 * 48 + 9 * 2 and im.size[0] > 8 * 50
    out = tmp_path / "bag.png"
    assert main(["sample", str(run), "--text", "a large bright bag at the bottom", "-n", "16",
                 "--out", str(out)]) == 0
    assert "16 samples of 'a large bright bag at the bottom' from step 3" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.size == (8 * 48 + 9 * 2, 2 * 48 + 3 * 2)  # 16 in rows of 8
    # several captions: one named row each; a folder: one PNG per sample
    assert main(["sample", str(run), "--text", "a tiny purse", "--text", "huge trainers, top-left",
                 "-n", "3", "--out", str(tmp_path / "two.png")]) == 0
    # words no training caption used are read into the training captions' words, and the user is told
    vocab = json.loads((sorted((run / "checkpoints").iterdir())[-1] / "state.json").read_text())["text2image"]["vocabulary"]
    assert "tiny" not in vocab and "purse" not in vocab and "a" in vocab
    out_text = capsys.readouterr().out
    assert "read 'a tiny purse' as '" in out_text and "tiny " in out_text.split("read 'a tiny purse'")[1]
    assert main(["sample", str(run), "--text", "a tiny purse", "--unknown-words", "keep", "-n", "1",
                 "--out", str(tmp_path / "kept.png")]) == 0
    assert "read " not in capsys.readouterr().out
    from gankit.data.vocabulary import words
    from gankit.text_sampling import load_text_generator

    lg0 = load_text_generator(run)
    read = lg0.read(["a tiny purse"], "rewrite")[0]
    assert set(words(read.read_as)) <= set(vocab) and read.replaced[0][0] == "tiny"
    assert lg0.read(["a tiny purse"], "keep")[0].read_as == "a tiny purse"
    known = " ".join(reversed(lg0.training_captions()[0].split()))  # known words in an unseen order
    near = lg0.read(["a tiny purse", known], "nearest")
    assert near[0].read_as in lg0.training_captions() and near[0].via == read.read_as
    assert near[1].read_as == known  # all its words known: as typed
    assert main(["sample", str(run), "--text", "a small dark sneaker", "-n", "2", "--out", str(tmp_path / "d")]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["sample-00000.png", "sample-00001.png"]
    # the same seed, the same images
    lg = load_text_generator(run)
    assert torch.equal(lg.sample(["a bag"], 2, seed=5), lg.sample(["a bag"], 2, seed=5))
    import gankit  # the API's noise-only sampling names the way a text run samples

    with pytest.raises(GankitError, match=r"is a 'text2image' checkpoint.*gankit sample RUN --text CAPTION"):
        gankit.sample(run)
    capsys.readouterr()
    # mistakes: no caption for a text run; --text for a run that is not one
    assert main(["sample", str(run), "--out", str(tmp_path / "x.png")]) == 2
    assert "give the caption with --text" in capsys.readouterr().err
    # gankit eval scores the attributes on the held-out splits, with the shuffled-caption baseline
    assert main(["eval", str(run), "--n", "16", "--json", "--unknown-words", "keep"]) == 0
    kept = json.loads(capsys.readouterr().out)
    assert main(["eval", str(run), "--n", "16", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["class_acc"] == kept["class_acc"]  # seen wordings: nothing to rewrite, the same images
    assert {"class_acc", "position_acc_combos", "size_acc_wordings", "fid"} <= set(scores)
    assert "class_acc" in scores["baseline"]


def test_text_on_a_run_that_is_not_text_to_image_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.api import train_config
    from tests.conftest import tiny_config

    train_config(tiny_config(tmp_path / "ring", steps=2, checkpoint_every=2))
    assert main(["sample", str(tmp_path / "ring"), "--text", "a bag", "--out", str(tmp_path / "x.png")]) == 2
    assert "--text needs a text -> image run" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "ring"), "--unknown-words", "keep", "--out", str(tmp_path / "x.png")]) == 2
    assert "--unknown-words is for text -> image runs" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "ring"), "--unknown-words", "keep"]) == 2
    assert "--unknown-words is for text -> image runs" in capsys.readouterr().err


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"model": "dcgan", "kl_weight": 2.0}, "text.kl_weight is for text -> image (model.arch=gan-int-cls)"),
    ({"model": "gan-int-cls", "conditional": "cgan"}, "model.conditional does not apply to model.arch=gan-int-cls"),
    ({"model": "gan-int-cls", "r1": 1.0}, "reg.r1 does not apply to model.arch=gan-int-cls"),
    ({"model": "gan-int-cls", "loss": "hinge"}, "train.loss 'hinge' does not suit model.arch=gan-int-cls"),
    ({"model": "gan-int-cls", "eval_metric": "modes"}, "unknown text -> image score 'modes'"),
])
def test_the_config_rules_of_text_to_image(overrides: dict[str, object], expected: str) -> None:
    from gankit.config import build_config
    from gankit.resolve import resolve

    with pytest.raises(GankitError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        resolve(build_config(overrides={"data": "captioned-fashion", **overrides}))
    ok = resolve(build_config(overrides={"model": "gan-int-cls", "data": "captioned-fashion",
                                         "eval_metric": "class_acc_wordings", "int_weight": 0.0}))
    assert ok.text.int_weight == 0.0


def test_a_saved_config_with_other_text_defaults_still_resolves() -> None:
    """A run's config.yaml keeps every key at the defaults of its day: a text.* or translate.*
    default changed since must not stop a DCGAN run from resuming; only what the user set counts."""
    from gankit.config import build_config, config_from_dict
    from gankit.resolve import resolve

    saved = resolve(build_config(overrides={"data": "ring", "model": "mlp"})).to_dict()
    saved["text"]["text_dims"] = 32  # an older default
    saved["translate"]["const"] = 3.0
    cfg = config_from_dict({**saved, "provenance": {"set_by_user": ["data.source", "model.arch"], "resolved": {}}},
                           "config.yaml")
    assert resolve(cfg).text.text_dims == 32
    cfg.provenance.user_set.append("text.text_dims")  # the same value set by the user is refused
    with pytest.raises(GankitError, match=r"text.text_dims is for text -> image"):
        resolve(cfg)


@needs_text
def test_text_to_image_needs_captioned_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "plain").mkdir()
    Image.new("L", (8, 8), 90).save(tmp_path / "plain" / "a.png")
    for data, expected in (("fashion-mnist", "neither captioned-fashion nor a folder of images with captions"),
                           (str(tmp_path / "plain"), "has no metadata.jsonl")):
        code = main(["train", "--model", "gan-int-cls", "--data", data, "--steps", "1", "--out",
                     str(tmp_path / "run"), "--no-progress"])
        assert code == 2 and expected in capsys.readouterr().err
        assert not (tmp_path / "run").exists()


def test_textnorm_keeps_the_training_captions_directions_and_drops_the_rest() -> None:
    g = torch.Generator().manual_seed(2)
    basis = torch.linalg.qr(torch.randn(16, 3, generator=g))[0]  # the training captions span 3 directions
    train = 0.3 + torch.randn(500, 3, generator=g) @ basis.T
    norm = TextNorm(16, 3)
    norm.set_stats(train)
    out = norm(train)
    assert out.shape == (500, 3) and float(out.var(0, unbiased=False).mean()) == pytest.approx(1.0, rel=1e-4)
    outside = torch.linalg.qr(torch.cat([basis, torch.randn(16, 1, generator=g)], 1))[0][:, 3]
    assert torch.allclose(norm(train[:4] + 5 * outside), out[:4], atol=1e-4)  # a new direction: dropped


def test_text_affine_starts_as_plain_batch_norm_and_scales_every_position_alike() -> None:
    from gankit.models.text2image import TextAffine

    torch.manual_seed(0)
    norm = TextAffine(3, 2)
    norm.reset()
    h, c = torch.randn(4, 3, 5, 5), torch.randn(4, 2)
    plain = torch.nn.functional.batch_norm(h, None, None, training=True, eps=norm.bn.eps)
    assert torch.allclose(norm(h, c), plain, atol=1e-6)  # zero at the start: the plain DCGAN
    with torch.no_grad():
        norm.fc.weight.copy_(torch.arange(12.0).view(6, 2) / 10)
        norm.fc.bias.fill_(0.5)
    gamma = c @ norm.fc.weight[:3].T + 0.5  # (B, 3) by hand
    beta = c @ norm.fc.weight[3:].T + 0.5
    expected = plain * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]
    out = norm(h, c)
    assert torch.allclose(out, expected, atol=1e-5)
    # the same scale and shift at every position: shifting the input map shifts the output map
    rolled = norm(h.roll(2, dims=3), c)
    assert torch.allclose(rolled, out.roll(2, dims=3), atol=1e-5)
    out.sum().backward()
    assert norm.fc.weight.grad is not None and float(norm.fc.weight.grad.abs().sum()) > 0


def test_the_fused_generator_reads_the_caption_at_every_layer() -> None:
    from gankit.models.base import DataShape
    from gankit.models.text2image import FusedGenerator, build_text2image

    torch.manual_seed(0)
    G, _ = build_text2image(DataShape((1, 16, 16)), 4, 12, 3, 4, torch.randn(20, 12), text_dims=6, fusion="affine")
    assert isinstance(G.net, FusedGenerator) and len(G.net.norms) == 2
    assert any(k.startswith("net.norms.") for k in G.state_dict())
    z, phi, eps = torch.randn(8, 4), torch.randn(8, 12), torch.randn(8, 3)
    x, mu, logvar = G(z, phi, eps)
    assert x.shape == (8, 1, 16, 16) and float(x.detach().abs().max()) <= 1 and mu.shape == (8, 3)
    x.square().mean().backward()
    # the layers that start at zero get a gradient from the first step, so the caption can act there
    assert all(float(n.fc.weight.grad.abs().sum()) > 0 for n in G.net.norms)
    plain, _ = build_text2image(DataShape((1, 16, 16)), 4, 12, 3, 4, text_dims=6)
    assert not isinstance(plain.net, FusedGenerator) and "net.net.0.weight" in plain.state_dict()  # the old keys


def test_what_where_places_one_patch_where_the_caption_says() -> None:
    from gankit.models.text2image import WhatWhere

    torch.manual_seed(0)
    layer = WhatWhere(in_dim=4, cond_dim=2, ch=3, size=(6, 6), k=3)
    zc, c = torch.randn(2, 4), torch.zeros(2, 2)
    patch = layer.what(zc).view(2, 3, 3, 3).detach()  # each sample's what: (ch, k, k)
    with torch.no_grad():  # a where that is sure: all of it on the position (row 2, column 3)
        layer.where.weight.zero_()
        layer.where.bias.fill_(-100.0)
        layer.where.bias[2 * 6 + 3] = 100.0
    h = layer(zc, c).detach()
    assert h.shape == (2, 3, 6, 6)
    # by hand: the patch (flipped: a convolution) centred on (2, 3), nothing elsewhere
    expected = torch.zeros(2, 3, 6, 6)
    expected[:, :, 1:4, 2:5] = patch.flip(2, 3)
    assert torch.allclose(h, expected, atol=1e-5)
    with torch.no_grad():  # the same what one position lower and to the left: the same map, moved
        layer.where.bias.fill_(-100.0)
        layer.where.bias[3 * 6 + 2] = 100.0
    assert torch.allclose(layer(zc, c).detach(), expected.roll((1, -1), dims=(2, 3)), atol=1e-5)
    with torch.no_grad():  # an unsure where: the patch spread evenly over the map
        layer.where.bias.zero_()
    spread = layer(zc, c)  # away from the edges, each position gets the whole patch's 1/36
    assert torch.allclose(spread.detach()[:, :, 2, 2], patch.sum((2, 3)) / 36, atol=1e-6)
    spread[:, :, 0, 0].sum().backward()  # more in a corner: the where learns to move there
    assert float(layer.where.bias.grad.abs().sum()) > 0 and float(layer.what.weight.grad.abs().sum()) > 0


def test_the_what_where_generator_builds_and_draws() -> None:
    from gankit.models.base import DataShape
    from gankit.models.text2image import FusedGenerator, WhatWhere, build_text2image

    torch.manual_seed(0)
    G, _ = build_text2image(DataShape((1, 16, 16)), 4, 12, 3, 4, torch.randn(20, 12), text_dims=6, fusion="where")
    assert isinstance(G.net, FusedGenerator) and isinstance(G.net.project, WhatWhere)
    x, _, _ = G(torch.randn(8, 4), torch.randn(8, 12), torch.randn(8, 3))
    assert x.shape == (8, 1, 16, 16) and float(x.detach().abs().max()) <= 1
    x.square().mean().backward()
    assert float(G.net.project.where.weight.grad.abs().sum()) > 0  # the caption moves the where


def test_a_wrapped_upsampling_layer_is_the_plain_one_on_a_tiled_map() -> None:
    from torch import nn

    from gankit.models.text2image import WrapUp

    torch.manual_seed(0)
    wrap = WrapUp(3, 2)
    plain = nn.ConvTranspose2d(3, 2, 4, 2, 1, bias=False)
    plain.weight.data.copy_(wrap.weight.data)
    x = torch.randn(2, 3, 5, 6)
    # a torus is the map repeated on every side: the plain layer on a 3x3 tiling, its middle tile
    middle = plain(x.repeat(1, 1, 3, 3))[:, :, 10:20, 12:24]
    assert wrap(x).shape == (2, 2, 10, 12) and torch.allclose(wrap(x), middle, atol=1e-6)
    # at the edges the zero-padded layer differs (a feature there sees zeros)
    assert not torch.allclose(plain(x)[:, :, 0], middle[:, :, 0], atol=1e-3)
    assert list(wrap.state_dict()) == list(plain.state_dict())  # the same keys and shapes


@pytest.mark.parametrize("g_pad", ["zero", "wrap"])
def test_only_the_wrapped_generator_draws_the_same_item_at_every_place(g_pad: str) -> None:
    from gankit.models.base import DataShape
    from gankit.models.text2image import build_text2image

    torch.manual_seed(0)
    G, _ = build_text2image(DataShape((1, 48, 48)), 4, 12, 6, 8, torch.randn(20, 12), text_dims=6,
                            fusion="where", g_pad=g_pad)
    net = G.net.eval()
    with torch.no_grad():  # weights of a trained size (DCGAN's N(0, 0.02) start makes the edges faint)
        for p in net.parameters():
            p.mul_(20)
    z, c = torch.randn(3, 4), torch.randn(3, 6)
    where = net.project.where
    with torch.no_grad():
        before = net(z, c)
        # the where's logits moved one cell right on the 6x6 map: the same what, put one place over
        where.weight.copy_(where.weight.view(6, 6, -1).roll(1, 1).reshape(36, -1))
        where.bias.copy_(where.bias.view(6, 6).roll(1, 1).reshape(36))
        after = net(z, c)
    gap = float((after - before.roll(8, 3)).abs().max())  # one cell of 6 is 8 of 48 pixels
    if g_pad == "wrap":
        assert gap < 1e-5  # exactly the same item, moved
    else:
        assert gap > 1e-2  # zero padding: the layers draw differently near the edges


def test_the_split_code_hides_the_where_from_the_rest_of_g() -> None:
    from gankit.models.base import DataShape
    from gankit.models.text2image import CodeSplit, FusedGenerator, build_text2image

    torch.manual_seed(0)
    split = CodeSplit(6, 2)
    c = torch.randn(5, 6)
    c_where, c_what = split(c)
    Q = torch.linalg.qr(split.V.detach())[0]
    # an orthogonal decomposition: c = c_what + c_where Q^T, c_what orthogonal to the where's directions
    assert c_where.shape == (5, 2) and torch.allclose(c_what + c_where @ Q.T, c, atol=1e-5)
    assert torch.allclose(c_what @ Q, torch.zeros(5, 2), atol=1e-5)
    with pytest.raises(ValueError, match="between 1"):
        CodeSplit(6, 6)

    G, _ = build_text2image(DataShape((1, 16, 16)), 4, 12, 6, 4, torch.randn(20, 12), text_dims=6,
                            fusion="split", where_dims=2)
    net = G.net
    assert isinstance(net, FusedGenerator) and net.split is not None and net.project.where.in_features == 2
    Q = torch.linalg.qr(net.split.V.detach())[0]
    z, c = torch.randn(3, 4), torch.randn(3, 6)
    moved = c + torch.randn(3, 2) @ Q.T  # the same code moved along the where's directions only
    with torch.no_grad():
        _, what = net.split(c)
        _, what_moved = net.split(moved)
        where, where_moved = net.split(c)[0], net.split(moved)[0]
    # what the rest of G reads is the same, what the where reads is not
    assert torch.allclose(what, what_moved, atol=1e-5) and not torch.allclose(where, where_moved, atol=1e-3)
    x = net(z, c)
    x.square().mean().backward()  # both halves pull on the directions: the split is learned
    assert float(net.split.V.grad.abs().sum()) > 0 and float(net.project.where.weight.grad.abs().sum()) > 0
    assert "net.split.V" in G.state_dict()  # saved with the weights
    small, _ = build_text2image(DataShape((1, 16, 16)), 4, 12, 6, 4, torch.randn(20, 12), text_dims=6,
                                fusion="split", where_dims=2, where_patch=3)
    assert small.net.project.what.out_features == small.net.project.ch * 9  # a 3x3 patch of ch features


def test_the_place_leak_is_the_correlation_of_the_rest_of_the_code_with_the_where() -> None:
    from gankit.models.base import DataShape
    from gankit.models.text2image import FusedGenerator

    torch.manual_seed(0)
    net = FusedGenerator(DataShape((1, 16, 16)), 4, 6, 4, where=True, where_dims=2)
    assert net.split is not None
    with torch.no_grad():  # the where reads c's first two coordinates
        net.split.V.copy_(torch.eye(6, 2))
    B = 512
    free = torch.randn(B, 6)  # the rest (coordinates 2..5) independent of the where's
    leaky = free.clone()
    leaky[:, 2:4] = free[:, :2]  # two directions of the rest repeat the where's
    with torch.no_grad():
        low, high = float(net.place_leak(free)), float(net.place_leak(leaky))
        # by hand: the squared correlations of the rest's 4 coordinates with each position's weight,
        # summed over positions; the where's 2 (removed from the rest) count 0 in the mean over 6
        where = torch.softmax(net.project.where(leaky[:, :2]), 1).double()
        corr = torch.corrcoef(torch.cat([leaky[:, 2:].double(), where], 1).T)[:4, 4:]
    # (to 2 %: positions the where almost never weighs are shrunk by the normalisation's epsilon)
    assert high == pytest.approx(float(corr.square().sum()) / 6, rel=2e-2)
    assert low < 0.1 * high
    c = leaky.clone().requires_grad_(True)
    net.place_leak(c).backward()  # pushes the rest, not the where (held fixed)
    assert float(c.grad[:, 2:4].abs().sum()) > 0 and float(net.project.where.weight.grad.abs().sum() if
                                                           net.project.where.weight.grad is not None else 0) == 0


@needs_text
@pytest.mark.parametrize("fusion", ["affine", "where", "split"])
def test_a_fused_run_samples_from_its_checkpoint(tmp_path: Path, shared_cache: Path, fusion: str) -> None:
    from gankit.api import train_config
    from gankit.config import build_config
    from gankit.models.text2image import FusedGenerator
    from gankit.text_sampling import load_text_generator

    run = tmp_path / "run"
    train_config(build_config(overrides={
        "model": "gan-int-cls", "data": "captioned-fashion", "caption_items": 64, "latent_dim": 8, "width": 8,
        "cond_dim": 8, "where_dims": 2, "g_fusion": fusion, "steps": 2, "batch_size": 8, "checkpoint_every": 2,
        "sample_every": 2, "precision": "fp32", "progress": False, "cache_dir": str(shared_cache),
        "out": str(run)}))
    lg = load_text_generator(run)
    assert isinstance(lg.G.net, FusedGenerator) and lg.config.text.g_fusion == fusion
    x = lg.sample(["a large bright bag at the bottom"], 3, seed=1)
    assert x.shape == (3, 1, 48, 48) and torch.equal(x, lg.sample(["a large bright bag at the bottom"], 3, seed=1))


@needs_text
def test_a_run_with_the_mode_seeking_term_logs_it_and_its_probe(tmp_path: Path, shared_cache: Path) -> None:
    from gankit.api import train_config
    from gankit.config import build_config

    names = tuple(f"{k}.png" for k in range(6))  # two captions of three images each
    captions = ["a dark square", "a light square"] * 3
    root = _folder(tmp_path / "mine", [json.dumps({"file_name": n, "text": c}).encode()
                                       for n, c in zip(names, captions, strict=True)], names)
    run = tmp_path / "run"
    train_config(build_config(overrides={
        "model": "gan-int-cls", "data": str(root), "image_size": "16", "latent_dim": 8, "width": 8,
        "cond_dim": 8, "mode_seeking": 1.0, "steps": 2, "batch_size": 4, "log_every": 1, "diagnose_every": 1,
        "checkpoint_every": 2, "sample_every": 2, "precision": "fp32", "progress": False,
        "cache_dir": str(shared_cache), "out": str(run)}))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = [r for r in records if "loss_g" in r]
    assert logged and all(0 < r["mode_seeking"] < 1e5 for r in logged)  # finite: the draws differ
    assert [r["diversity"] for r in records if "diversity" in r]  # two captions shared: probed
    assert "mode_seeking: 1.0" in (run / "config.yaml").read_text()
