"""The lab's latent explorer (Starlette's TestClient on tiny runs trained here): sampling and
interpolating a DCGAN, the classes of a conditional one, translating an upload, and what is refused."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from gankit.api import train_config  # noqa: E402
from gankit.config import build_config  # noqa: E402
from gankit.data import from_tensor  # noqa: E402
from gankit.lab.explore import MAX_UPLOAD, Explorer  # noqa: E402
from gankit.lab.server import make_app  # noqa: E402
from tests.conftest import needs_fmnist, tiny_config, tiny_images  # noqa: E402
from tests.train.test_translators import shapes, tiny  # noqa: E402

TOKEN = "t0k3n"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lab root with a tiny DCGAN, a conditional DCGAN (3 classes), a pix2pix, a 2-D ring run
    and a run without a checkpoint."""
    root = tmp_path_factory.mktemp("runs")
    # 40 steps at a high rate: G's images have contrast (at its start they are all near grey)
    kw = {"model": "dcgan", "data": "tensor", "steps": 40, "width": 8, "batch_size": 16, "checkpoint_every": 40,
          "lr_g": 5e-3, "lr_d": 5e-3}
    train_config(tiny_config(root / "dcgan", **kw), data=from_tensor(tiny_images()))
    train_config(tiny_config(root / "cond", conditional="acgan", **kw),
                 data=from_tensor(tiny_images(), torch.arange(48) % 3))
    train_config(tiny_config(root / "ring", steps=4, checkpoint_every=4))
    pairs = root.parent / (root.name + "-pairs")
    pairs.mkdir()
    for k, a in enumerate(shapes(8, 0)):
        Image.fromarray(np.concatenate([a, 255 - a], 1)).save(pairs / f"p{k}.png")
    train_config(build_config(overrides=tiny(root / "p2p", model="pix2pix", data=str(pairs), steps=2,
                                             checkpoint_every=2, sample_every=2)))
    (root / "empty").mkdir()
    (root / "empty" / "config.yaml").write_text("train:\n  steps: 10\n")
    (root / "empty" / "metrics.jsonl").write_text("")
    return root


@pytest.fixture
def lab(runs: Path) -> tuple[TestClient, Explorer]:
    explorer = Explorer()
    return TestClient(make_app(runs, TOKEN, explorer=explorer)), explorer


def pixels(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        return np.asarray(im).astype(int)


def test_sample_and_interpolate_a_dcgan(lab: tuple[TestClient, Explorer]) -> None:
    client, explorer = lab
    info = client.get("/api/explore", params={"run": "dcgan"}).json()
    assert info == {"kind": "gan", "step": 40, "points": False, "num_classes": 0, "classes": []}
    one = client.get("/api/explore/sample", params={"run": "dcgan", "seed": 3, "n": 4})
    assert one.status_code == 200 and one.headers["content-type"] == "image/png"
    assert pixels(one.content).shape == (2 * 18 + 2, 2 * 18 + 2)  # 2 x 2 tiles of 16 px, padding 2
    again = client.get("/api/explore/sample", params={"run": "dcgan", "seed": 3, "n": 4})
    other = client.get("/api/explore/sample", params={"run": "dcgan", "seed": 4, "n": 4})
    assert again.content == one.content and other.content != one.content
    assert explorer.loads == 1  # the checkpoint was loaded once, then cached
    strip = client.get("/api/explore/interpolate", params={"run": "dcgan", "seed_a": 3, "seed_b": 9, "n": 5})
    s = pixels(strip.content)
    assert s.shape == (18 + 2, 5 * 18 + 2)
    # its ends are the two seeds' samples
    for seed, left in ((3, 2), (9, 2 + 4 * 18)):
        tile = pixels(client.get("/api/explore/sample", params={"run": "dcgan", "seed": seed, "n": 1}).content)
        assert np.abs(s[2:18, left:left + 16] - tile[2:18, 2:18]).max() <= 1
    middle = s[2:18, 2 + 2 * 18:2 + 2 * 18 + 16]
    assert min(np.abs(middle - s[2:18, 2:18]).max(), np.abs(middle - s[2:18, 2 + 4 * 18:2 + 4 * 18 + 16]).max()) > 20
    for bad in ({"n": 0}, {"n": 65}, {"seed": "x"}, {"class": 0}):
        r = client.get("/api/explore/sample", params={"run": "dcgan", **bad})
        assert r.status_code == 400, bad
    assert "text run" in client.get("/api/explore/caption", params={"run": "dcgan", "text": "a"}).json()["error"]


def test_a_conditional_run_offers_its_classes(lab: tuple[TestClient, Explorer]) -> None:
    client, _ = lab
    info = client.get("/api/explore", params={"run": "cond"}).json()
    assert info["num_classes"] == 3 and len(info["classes"]) == 3
    by_class = [client.get("/api/explore/sample", params={"run": "cond", "seed": 1, "n": 4, "class": k}).content
                for k in range(3)]
    assert len(set(by_class)) == 3  # the same noise, another class: another image
    assert client.get("/api/explore/sample", params={"run": "cond", "class": 3}).status_code == 400


def test_what_the_explorer_refuses(lab: tuple[TestClient, Explorer]) -> None:
    client, _ = lab
    assert client.get("/api/explore", params={"run": "../dcgan"}).status_code == 400
    assert client.get("/api/explore", params={"run": "empty"}).status_code == 404
    assert client.get("/api/explore", params={"run": "ring"}).json()["points"] is True
    r = client.get("/api/explore/sample", params={"run": "ring"})
    assert r.status_code == 400 and "points" in r.json()["error"]


def png_of(size: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(shapes(1, 5)[0]).resize((size, size)).save(buf, "PNG")
    return buf.getvalue()


def test_translate_an_upload(lab: tuple[TestClient, Explorer]) -> None:
    client, _ = lab
    url = "/api/explore/translate?run=p2p"
    assert client.post(url, content=png_of(16)).status_code == 403  # no token
    ok = client.post(url, content=png_of(40), headers={"X-Gankit-Token": TOKEN})  # resized to the run's 16 px
    assert ok.status_code == 200, ok.text
    assert pixels(ok.content).shape == (18 + 2, 2 * 18 + 2)  # the input and its translation
    big = client.post(url, content=b"\0" * (MAX_UPLOAD + 1), headers={"X-Gankit-Token": TOKEN})
    assert big.status_code == 413

    def chunks():  # no Content-Length: counted as it comes, refused once past the limit
        for _ in range(5):
            yield b"\0" * (1 << 20)
    assert client.post(url, content=chunks(), headers={"X-Gankit-Token": TOKEN}).status_code == 413
    junk = client.post(url, content=b"not an image at all", headers={"X-Gankit-Token": TOKEN})
    assert junk.status_code == 400 and "not an image" in junk.json()["error"]
    r = client.post(url + "&direction=BtoA", content=png_of(16), headers={"X-Gankit-Token": TOKEN})
    assert r.status_code == 400 and "BtoA" in r.json()["error"]  # pix2pix translates one way
    r = client.post("/api/explore/translate?run=dcgan", content=png_of(16), headers={"X-Gankit-Token": TOKEN})
    assert r.status_code == 400 and "translator" in r.json()["error"]
    assert client.get("/api/explore", params={"run": "p2p"}).json()["directions"] == ["AtoB"]


def test_the_cache_is_bounded(runs: Path) -> None:
    from gankit.rundir import RunDir

    explorer = Explorer(size=1)
    first = explorer.get(RunDir(runs / "dcgan"))
    assert explorer.get(RunDir(runs / "dcgan")) is first and explorer.loads == 1
    explorer.get(RunDir(runs / "cond"))  # pushes dcgan out
    assert len(explorer.cache) == 1 and explorer.get(RunDir(runs / "dcgan")) is not first
    assert explorer.loads == 3


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("all_minilm_l6_v2", "transformers")),
                    reason="the text extra is not installed (pip install 'gankit[text]')")
@needs_fmnist
def test_a_text_run_draws_a_caption(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    train_config(build_config(overrides={
        "model": "gan-int-cls", "data": "captioned-fashion", "caption_items": 64, "latent_dim": 8, "width": 8,
        "cond_dim": 8, "steps": 3, "batch_size": 8, "log_every": 1, "sample_every": 3, "checkpoint_every": 3,
        "precision": "fp32", "progress": False, "cache_dir": str(tmp_path / "cache"), "out": str(root / "t")}))
    client = TestClient(make_app(root, TOKEN))
    assert client.get("/api/explore", params={"run": "t"}).json() == {"kind": "text", "step": 3}
    r = client.get("/api/explore/caption", params={"run": "t", "text": "a large bright bag", "n": 3, "seed": 2})
    assert r.status_code == 200, r.text
    assert pixels(r.content).shape[:2] == (2 * 48 + 3 * 2, 2 * 48 + 3 * 2)  # 3 images of 48 px, 2 a row
    again = client.get("/api/explore/caption", params={"run": "t", "text": "a large bright bag", "n": 3, "seed": 2})
    assert again.content == r.content
    assert client.get("/api/explore/caption", params={"run": "t", "text": ""}).status_code == 400
    r = client.get("/api/explore/sample", params={"run": "t"})
    assert r.status_code == 400 and "gan run" in r.json()["error"]
