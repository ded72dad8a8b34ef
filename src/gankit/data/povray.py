"""Objects rendered at known angles by POV-Ray (Debian's ``povray``), for novel-view synthesis.

A view is what an orthographic camera sees of the object turned by the view's azimuth (degrees
about the vertical axis) and elevation (degrees the camera stands above the horizon), under two
lights fixed relative to the camera, on a plain light-grey background. One scene holds one copy of
the object per view, each turned so and clipped to its own cell of a sheet, and one ``povray``
process (one thread) renders the sheet, several objects to a sheet: POV-Ray idles about 0.25 s per
frame of an animation and 0.7 s per run, so a frame per view would cost ten times the tracing
(measured on a shared 2-core machine: 0.24 s a 32 px view as frames, 0.024 s as the cells of one
object's sheet, 0.006 s with eight objects to a sheet). Each pixel averages 2 x 2 rays: POV-Ray's
adaptive antialiasing compares a pixel with its neighbours, so a view would depend on its sheet.

The objects:
- procedural: a seeded random composition of 2-4 primitives (sphere, box, cylinder, cone,
  torus), each with its own colour and material (matte, glossy or metallic); seeds make them;
- named: the Utah teapot (``povray-examples``' teapot.inc), the six chess pieces of its
  chess2.pov, and the chair of its balcony scene (chair.inc), each scaled to the same frame.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from gankit.errors import GankitError

SCENES = Path("/usr/share/povray-3.7/scenes")
INCLUDE = Path("/usr/share/povray-3.7/include")
SUPERSAMPLE = 2  # rays per pixel side, averaged
CELL = 2.2  # the side of one view, in scene units: the objects fit a sphere of radius ~1.1
# the chess pieces of chess2.pov, by the names it declares
CHESS = ("Pawn", "Rook", "Knight", "Bishop", "Queen", "King")
NAMED = ("teapot", *(c.lower() for c in CHESS), "chair")

_FINISHES = {
    "matte": "finish { ambient 0.15 diffuse 0.8 }",
    "glossy": "finish { ambient 0.15 diffuse 0.7 phong 0.8 phong_size 60 }",
    "metal": "finish { ambient 0.1 diffuse 0.4 specular 0.9 roughness 0.01 metallic brilliance 2 }",
}


@dataclass(frozen=True)
class Grid:
    """The views rendered of every object: ``azimuths`` evenly round the circle from 0, at each of
    ``elevations`` (degrees), ``size`` pixels square. View v is azimuth v % A, elevation v // A."""

    azimuths: int
    elevations: tuple[float, ...]
    size: int

    @property
    def views(self) -> int:
        return self.azimuths * len(self.elevations)

    def angles(self) -> Tensor:
        """(V, 2) float32: (azimuth, elevation) in degrees of each view, in render order."""
        az = torch.arange(self.azimuths, dtype=torch.float32) * (360.0 / self.azimuths)
        el = torch.tensor(self.elevations, dtype=torch.float32)
        return torch.stack([az.repeat(len(el)), el.repeat_interleave(self.azimuths)], 1)


def povray_binary() -> str:
    """The ``povray`` executable, or a GankitError saying how to install it."""
    exe = shutil.which("povray")
    if exe is None:
        raise GankitError("the renderer POV-Ray is not installed: run scripts/setup.sh, or "
                          "`apt-get install povray povray-examples` (Debian)")
    return exe


def _vec(v: tuple[float, ...]) -> str:
    return "<" + ", ".join(f"{x:.4f}" for x in v) + ">"


def procedural_object(seed: int) -> str:
    """POV-Ray text declaring ``Subject``, a random composition of primitives (the same ``seed``,
    the same object). No reflections: a scene holds one copy of the object per view."""
    rng = random.Random(seed)
    parts = []
    for i in range(rng.randint(2, 4)):
        r, g, b = (rng.uniform(0.1, 0.95) for _ in range(3))
        tex = f"texture {{ pigment {{ rgb {_vec((r, g, b))} }} {_FINISHES[rng.choice(list(_FINISHES))]} }}"
        # the first part is the body near the centre; the others stick out of it, off-centre
        spread = 0.15 if i == 0 else 0.55
        pos = tuple(rng.uniform(-spread, spread) for _ in range(3))
        s = rng.uniform(0.35, 0.6) if i == 0 else rng.uniform(0.15, 0.4)
        kind = rng.choice(("sphere", "box", "cylinder", "cone", "torus"))
        if kind == "sphere":
            shape = f"sphere {{ 0, {s:.4f}"
        elif kind == "box":
            dims = tuple(s * rng.uniform(0.4, 1.2) for _ in range(3))
            shape = f"box {{ {_vec(tuple(-d for d in dims))}, {_vec(dims)}"
        elif kind == "cylinder":
            shape = f"cylinder {{ <0, {-s:.4f}, 0>, <0, {s:.4f}, 0>, {s * rng.uniform(0.3, 0.6):.4f}"
        elif kind == "cone":
            shape = f"cone {{ <0, {-s:.4f}, 0>, {s * 0.6:.4f}, <0, {s:.4f}, 0>, 0"
        else:
            shape = f"torus {{ {s:.4f}, {s * rng.uniform(0.2, 0.4):.4f}"
        rot = tuple(rng.uniform(0, 180) for _ in range(3))
        parts.append(f"  {shape} {tex} rotate {_vec(rot)} translate {_vec(pos)} }}")
    return "#declare Subject = union {\n" + "\n".join(parts) + "\n}\n"


def _example(path: Path) -> Path:
    """A file of povray-examples, or a GankitError saying how to install it."""
    if not path.is_file():
        raise GankitError(f"{path} is missing: the example objects need Debian's povray-examples "
                          "(run scripts/setup.sh, or `apt-get install povray-examples`)")
    return path


def _chess_declarations() -> str:
    """chess2.pov's declarations of the pieces' shapes (from PawnBase up to its textures)."""
    text = _example(SCENES / "advanced" / "chess2.pov").read_text(errors="replace")
    start, stop = text.find("#declare PawnBase"), text.find("#declare WWood")
    if start < 0 or stop < start:
        raise GankitError(f"{SCENES / 'advanced' / 'chess2.pov'} does not declare the chess pieces as "
                          "povray-examples 3.7 does; reinstall povray-examples")
    return text[start:stop]


def named_object(name: str) -> tuple[str, list[Path]]:
    """POV-Ray text declaring ``Subject``, a named example object centred and scaled to the
    procedural objects' frame, and the folders its includes live in."""
    if name == "teapot":
        return ("#declare Teapot_Texture = texture { pigment { rgb <0.85, 0.35, 0.2> } "
                + _FINISHES["glossy"] + " }\n#declare Teapot_Orientation = <-90, 0, 0>;\n"
                "#declare Subject = union { #include \"teapot.inc\" translate <0, -1.5, 0> scale 0.42 }\n",
                [_example(SCENES / "advanced" / "teapot" / "teapot.inc").parent])
    if name in (c.lower() for c in CHESS):
        piece = name.capitalize()
        colour = "<0.9, 0.85, 0.7>" if CHESS.index(piece) % 2 == 0 else "<0.35, 0.2, 0.12>"
        return (_chess_declarations() + f"#declare Subject = object {{ {piece} texture {{ pigment {{ rgb {colour} }} "
                + _FINISHES["glossy"] + " } translate <0, -6.75, 0> scale 0.15 }\n", [])
    if name == "chair":
        # chair.inc is z-up and placed beside the balcony's table: back to the origin, y up
        return ("#declare Subject = union { #include \"chair.inc\" translate <-2.45, -3.35, -0.5> rotate <-90, 0, 0> scale 1.9 }\n",
                [_example(SCENES / "advanced" / "balcony" / "chair.inc").parent])
    raise GankitError(f"unknown example object {name!r}; one of: {', '.join(NAMED)}")


def scene(bodies: list[str], grid: Grid) -> str:
    """The whole scene file: for each object k (its text declares ``Subject``), one copy per view,
    turned as the camera would see it from that view's azimuth and elevation and clipped to its
    cell of a sheet, all under one orthographic camera: object k's view v is the cell in column
    v % A, row k * E + v // A (A azimuths, E elevations)."""
    el = ", ".join(f"{e:.4f}" for e in grid.elevations)
    cols, rows = grid.azimuths, len(grid.elevations)
    total = rows * len(bodies)
    cx, cy = (cols - 1) * CELL / 2, -(total - 1) * CELL / 2
    placed = []
    for k, body in enumerate(bodies):
        placed.append(f"""{body}
#for (V, 0, {grid.views - 1})
  object {{ Subject
    rotate <0, mod(V, {cols}) * {360.0 / cols:.6f}, 0>
    rotate <-Elevations[div(V, {cols})], 0, 0>
    clipped_by {{ box {{ <{-CELL / 2}, {-CELL / 2}, -10>, <{CELL / 2}, {CELL / 2}, 10> }} }}
    translate <mod(V, {cols}) * {CELL}, -({k * rows} + div(V, {cols})) * {CELL}, 0> }}
#end""")
    objects = "\n".join(placed)
    return f"""#version 3.7;
global_settings {{ assumed_gamma 1.0 }}
#include "colors.inc"
#include "shapes.inc"
#declare Elevations = array[{rows}] {{ {el} }};
{objects}
camera {{ orthographic location <{cx}, {cy}, -20> look_at <{cx}, {cy}, 0>
         right x * {cols * CELL} up y * {total * CELL} }}
light_source {{ <-8, 12, -20> color rgb 0.9 parallel point_at 0 }}
light_source {{ <10, 3, -12> color rgb 0.4 parallel point_at 0 shadowless }}
background {{ rgb <0.92, 0.92, 0.92> }}
"""


def render_objects(bodies: list[str], grid: Grid, library: list[Path] | None = None,
                   timeout: float = 600) -> Tensor:
    """Every view of each object: uint8 (K * V, 3, size, size), object by object, each in
    ``Grid`` order. One ``povray`` process on one thread (``+WT1``) renders them all as the
    cells of one sheet (POV-Ray idles about 0.7 s a run and 0.25 s a frame of an animation,
    whatever their size: one run for many small views is ten times faster than a frame each)."""
    exe = povray_binary()
    cols, rows, s = grid.azimuths, len(grid.elevations) * len(bodies), grid.size * SUPERSAMPLE
    with tempfile.TemporaryDirectory(prefix="gankit-povray-") as tmp:
        pov, png = Path(tmp) / "objects.pov", Path(tmp) / "views.png"
        pov.write_text(scene(bodies, grid))
        args = [exe, f"+I{pov}", f"+O{png}", f"+W{cols * s}", f"+H{rows * s}", "-D", "+WT1", "+FN",
                "-A", "-GA", f"+L{INCLUDE}", *(f"+L{p}" for p in dict.fromkeys(library or []))]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise GankitError(f"POV-Ray took over {timeout:.0f} s for {len(bodies)} objects' views") from None
        if done.returncode != 0 or not png.is_file():
            tail = " ".join(done.stderr.strip().splitlines()[-3:])
            raise GankitError(f"POV-Ray failed (exit {done.returncode}): {tail}")
        with Image.open(png) as im:
            sheet = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.uint8).copy())  # (rows*s, cols*s, 3)
    views = sheet.view(rows, s, cols, s, 3).permute(0, 2, 4, 1, 3)  # (rows, cols, 3, s, s)
    views = views.reshape(len(bodies) * grid.views, 3, s, s).float()
    # antialiased by averaging SUPERSAMPLE^2 rays a pixel (POV-Ray's own adaptive antialiasing
    # compares a pixel with its neighbours: a view would depend on the cell above it)
    views = torch.nn.functional.avg_pool2d(views, SUPERSAMPLE)
    return views.round().to(torch.uint8).contiguous()


def render_object(body: str, grid: Grid, library: list[Path] | None = None, timeout: float = 600) -> Tensor:
    """Every view of one object: uint8 (V, 3, size, size), in ``Grid`` order."""
    return render_objects([body], grid, library, timeout)


def object_body(name: str, seed: int) -> tuple[str, list[Path]]:
    """An object's scene text by its name: ``proc-N`` (procedural, seed ``seed`` * 100003 + N) or
    a named example object."""
    if name.startswith("proc-"):
        return procedural_object(seed * 100_003 + int(name[5:])), []
    return named_object(name)


__all__ = ["CHESS", "NAMED", "Grid", "named_object", "object_body", "povray_binary",
           "procedural_object", "render_object", "render_objects", "scene"]
