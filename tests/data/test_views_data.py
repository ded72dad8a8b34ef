"""Views of objects at known angles: the POV-Ray renderer, the cache keyed by its parameters, the
held-out split, and a user's folders of object folders (angles from metadata.jsonl or names)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit.data.views as views_mod
from gankit.data.povray import (
    Grid,
    named_object,
    object_body,
    procedural_object,
    render_object,
    render_objects,
)
from gankit.data.views import VIEW_SETS, load_view_folder, load_views, render_set
from gankit.errors import GankitError


@pytest.fixture
def povray() -> None:
    """The renderer is part of the set-up (scripts/setup.sh installs it): its absence fails."""
    if shutil.which("povray") is None:
        pytest.fail("POV-Ray is not installed: run scripts/setup.sh (apt-get install povray povray-examples)")


def test_grid_angles_are_azimuth_fastest() -> None:
    a = Grid(4, (10.0, 30.0), 16).angles()
    assert a.tolist() == [[0, 10], [90, 10], [180, 10], [270, 10], [0, 30], [90, 30], [180, 30], [270, 30]]


def test_procedural_objects_come_from_their_seed() -> None:
    assert procedural_object(3) == procedural_object(3)
    assert procedural_object(3) != procedural_object(4)


def test_the_renderer_renders_views_that_change_with_azimuth(povray: None) -> None:
    grid = Grid(4, (20.0,), 16)
    body, _ = object_body("proc-1", 0)
    v = render_object(body, grid)
    assert v.shape == (4, 3, 16, 16) and v.dtype == torch.uint8
    background = torch.tensor([235, 235, 235], dtype=torch.uint8)[:, None, None]
    assert ((v[0] != background).any(0)).sum() > 10  # the object is in view
    turned = (v[0].float() - v[1].float()).abs().mean()
    assert turned > 2.0, turned  # 90 degrees round, it looks different
    assert torch.equal(render_object(body, grid), v)  # and the same again


def test_a_view_is_the_same_whatever_sheet_it_is_rendered_on(povray: None) -> None:
    grid = Grid(2, (20.0,), 16)
    bodies = [object_body(f"proc-{i}", 0)[0] for i in range(2)]
    together = render_objects(bodies, grid)
    assert torch.equal(together[2:], render_object(bodies[1], grid))


def test_a_named_example_object_renders(povray: None) -> None:
    body, library = named_object("teapot")
    v = render_object(body, Grid(2, (20.0,), 16), library)
    assert v.shape == (2, 3, 16, 16) and v.float().std() > 10


def test_the_cache_returns_the_same_views_without_rendering(povray: None, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    spec = VIEW_SETS.get("views-tiny")
    first = render_set(spec, cache_dir=tmp_path, progress=False)
    assert first.images.shape == (spec.procedural * 4, 3, 16, 16)
    assert len(list((tmp_path / "views").iterdir())) == 1

    def no_rendering(*a: object, **k: object) -> None:
        raise AssertionError("rendered again")

    monkeypatch.setattr(views_mod, "render_objects", no_rendering)
    again = render_set(spec, cache_dir=tmp_path, progress=False)
    assert torch.equal(again.images, first.images) and torch.equal(again.angles, first.angles)
    with pytest.raises(AssertionError, match="rendered again"):  # other parameters, another key
        render_set(spec, size=32, cache_dir=tmp_path, progress=False)


def test_held_out_objects_are_never_trained_on(povray: None, tmp_path: Path) -> None:
    train = load_views("views-tiny", "train", cache_dir=tmp_path, progress=False)
    test = load_views("views-tiny", "test", cache_dir=tmp_path, progress=False)
    assert set(train.objects).isdisjoint(test.objects) and len(test.objects) == 2
    assert len(train) == 4 * len(train.objects) and train.obj.tolist() == sorted(train.obj.tolist())
    starts, counts = test.starts_counts()
    assert starts.tolist() == [0, 4] and counts.tolist() == [4, 4]


def _png(path: Path, size: int = 8, value: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)


def test_a_folder_of_objects_reads_angles_from_names_and_metadata(tmp_path: Path) -> None:
    _png(tmp_path / "cup" / "az000_el10.png")
    _png(tmp_path / "cup" / "az090_el10.png", value=50)
    _png(tmp_path / "pot" / "front.png")
    _png(tmp_path / "pot" / "side.png")
    (tmp_path / "pot" / "metadata.jsonl").write_text(
        json.dumps({"file": "front.png", "azimuth": 0}) + "\n" + json.dumps({"file": "side.png", "azimuth": 45,
                                                                             "elevation": 20}) + "\n")
    v = load_view_folder(tmp_path)
    assert v.objects == ["cup", "pot"] and v.obj.tolist() == [0, 0, 1, 1]
    assert v.angles.tolist() == [[0, 10], [90, 10], [0, 0], [45, 20]]
    assert v.images.shape == (4, 3, 8, 8) and int(v.images[1, 0, 0, 0]) == 50


def test_a_view_without_an_angle_is_named(tmp_path: Path) -> None:
    _png(tmp_path / "cup" / "az000.png")
    _png(tmp_path / "cup" / "photo.png")
    with pytest.raises(GankitError, match=r"photo\.png: no angle"):
        load_view_folder(tmp_path)


def test_views_of_different_sizes_are_named(tmp_path: Path) -> None:
    _png(tmp_path / "cup" / "az000.png", size=8)
    _png(tmp_path / "cup" / "az090.png", size=12)
    with pytest.raises(GankitError, match=r"az090\.png is 12x12, but .*az000\.png is 8x8"):
        load_view_folder(tmp_path)


def test_an_unreadable_view_is_named(tmp_path: Path) -> None:
    _png(tmp_path / "cup" / "az000.png")
    (tmp_path / "cup" / "az090.png").write_bytes(b"not a png")
    with pytest.raises(GankitError, match=r"az090\.png: cannot be read as an image"):
        load_view_folder(tmp_path)


def test_missing_example_scenes_say_how_to_install_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gankit.data.povray as povray_mod

    monkeypatch.setattr(povray_mod, "SCENES", tmp_path)
    for name in ("teapot", "knight", "chair"):
        with pytest.raises(GankitError, match="need Debian's povray-examples"):
            named_object(name)
