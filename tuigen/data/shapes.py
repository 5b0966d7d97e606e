"""Procedural multi-object scenes mirroring i-CLEVR, rendered offline with PIL.

Each scene holds 1-3 distinct (shape, colour) objects on a light grey floor and
is labelled with a 24-dim multi-hot vector, index = shape_index * 8 + colour_index
(see CLASS_NAMES: "gray cube", "red cube", ..., "yellow cylinder").

Scenes are sampled in resolution-free coordinates (fractions of the image side)
and rendered straight at the requested size, so every size shows the same scenes
and small sizes stay crisp instead of being blurred down from 32 px.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .catalog import DatasetError
from .core import ImageDataset, Progress, throttled

# Bump when the test label sets below change, so stored evaluation results are not compared across versions.
SHAPES_LABELS_VERSION = 1
SEED = 3_141_592
NUM_SCENES = 5000
TEST_SET_SIZE = 32
# The CLEVR palette, in i-CLEVR's colour order.
COLOURS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87), "red": (173, 35, 35), "blue": (42, 75, 215), "green": (29, 105, 20),
    "brown": (129, 74, 25), "purple": (129, 38, 192), "cyan": (41, 208, 208), "yellow": (255, 238, 51),
}
SHAPE_NAMES = ("cube", "sphere", "cylinder")
CLASS_NAMES = [f"{colour} {shape}" for shape in SHAPE_NAMES for colour in COLOURS]
NUM_CLASSES = len(CLASS_NAMES)
BACKGROUND = (214, 214, 210)


@dataclass(frozen=True)
class SceneObject:
    cls: int  # shape_index * 8 + colour_index
    x: float  # centre, as a fraction of the image side
    y: float
    r: float  # bounding radius, as a fraction of the image side


def class_index(shape: str, colour: str) -> int:
    return SHAPE_NAMES.index(shape) * len(COLOURS) + list(COLOURS).index(colour)


def sample_label_sets(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """``count`` sorted arrays of 1-3 distinct class indices (distinct, so multi-hot loses nothing)."""
    return [np.sort(rng.choice(NUM_CLASSES, rng.integers(1, 4), replace=False)) for _ in range(count)]


def _place(rng: np.random.Generator, count: int) -> list[tuple[float, float, float]]:
    """Centres and radii for ``count`` objects, rejection-sampled to avoid overlap where possible."""
    placed: list[tuple[float, float, float]] = []
    for _ in range(count):
        for _attempt in range(100):
            r = rng.uniform(0.11, 0.17)
            x, y = rng.uniform(r + 0.02, 1 - r - 0.02, size=2)
            # 1.15: cube corners reach a little beyond the bounding radius.
            if all(np.hypot(x - px, y - py) > 1.15 * (r + pr) for px, py, pr in placed):
                break
        placed.append((float(x), float(y), float(r)))  # crowded scene: keep the last try
    return placed


def sample_scenes(count: int = NUM_SCENES, seed: int = SEED) -> list[list[SceneObject]]:
    # Labels and geometry use separate streams so label sets can be recomputed without placing objects.
    labels = sample_label_sets(np.random.default_rng([seed, 0]), count)
    geometry = np.random.default_rng([seed, 1])
    return [[SceneObject(int(c), *xyr) for c, xyr in zip(classes, _place(geometry, len(classes)))]
            for classes in labels]


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, ...]:
    return tuple(int(v * factor) for v in colour)


def _tint(colour: tuple[int, int, int], factor: float) -> tuple[int, ...]:
    return tuple(int(v + (255 - v) * factor) for v in colour)


def _draw_object(draw: ImageDraw.ImageDraw, obj: SceneObject, side: int) -> None:
    shape = SHAPE_NAMES[obj.cls // len(COLOURS)]
    colour = list(COLOURS.values())[obj.cls % len(COLOURS)]
    x, y, r = obj.x * side, obj.y * side, obj.r * side
    edge, width = _shade(colour, 0.6), max(1, round(0.08 * r))
    if shape == "cube":
        a = 0.8 * r
        draw.rectangle((x - a, y - a, x + a, y + a), fill=colour, outline=edge, width=width)
    elif shape == "sphere":
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour, outline=edge, width=width)
        h = 0.25 * r  # specular highlight: reads as a ball rather than a disc
        draw.ellipse((x - 0.35 * r - h, y - 0.35 * r - h, x - 0.35 * r + h, y - 0.35 * r + h), fill=_tint(colour, 0.45))
    else:  # cylinder: narrow upright body with elliptical ends, top end lighter
        w, e = 0.75 * r, 0.3 * r
        draw.ellipse((x - w, y + r - 2 * e, x + w, y + r), fill=colour, outline=edge, width=width)
        draw.rectangle((x - w, y - r + e, x + w, y + r - e), fill=colour)
        draw.line((x - w, y - r + e, x - w, y + r - e), fill=edge, width=width)
        draw.line((x + w, y - r + e, x + w, y + r - e), fill=edge, width=width)
        draw.ellipse((x - w, y - r, x + w, y - r + 2 * e), fill=_tint(colour, 0.3), outline=edge, width=width)


def render_scene(objects: list[SceneObject], size: int) -> np.ndarray:
    """One scene as a (3, size, size) uint8 array."""
    # ImageDraw has no antialiasing: draw up to 4x larger and box-reduce for smooth, crisp edges.
    factor = max(1, min(4, 256 // size))
    canvas = Image.new("RGB", (size * factor, size * factor), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for obj in objects:
        _draw_object(draw, obj, size * factor)
    if factor > 1:
        canvas = canvas.reduce(factor)
    return np.asarray(canvas).transpose(2, 0, 1)


def multi_hot(label_sets: list[np.ndarray]) -> np.ndarray:
    labels = np.zeros((len(label_sets), NUM_CLASSES), dtype=np.float32)
    for row, classes in zip(labels, label_sets):
        row[classes] = 1.0
    return labels


def load_shapes(name: str, size: int, progress: Progress | None = None) -> ImageDataset:
    """The 5,000 training scenes rendered at ``size`` (RGB)."""
    scenes = sample_scenes()
    images = np.empty((len(scenes), 3, size, size), dtype=np.uint8)
    tick = throttled(progress, len(scenes))
    for i, scene in enumerate(scenes):
        images[i] = render_scene(scene, size)
        tick(i + 1)
    labels = multi_hot([np.array([obj.cls for obj in scene]) for scene in scenes])
    return ImageDataset(name, images, labels, "multi", list(CLASS_NAMES))


def _unseen_label_sets(rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """2-3 object combinations that never occur in the training scenes (like i-CLEVR's new_test).

    Almost every pair occurs among 5,000 training scenes, so in practice these are triples.
    """
    seen = {tuple(s) for s in sample_label_sets(np.random.default_rng([SEED, 0]), NUM_SCENES)}
    found: list[np.ndarray] = []
    while len(found) < count:
        classes = np.sort(rng.choice(NUM_CLASSES, rng.integers(2, 4), replace=False))
        if tuple(classes) not in seen:
            seen.add(tuple(classes))  # no duplicates inside the set either
            found.append(classes)
    return found


def shapes_test_labels(which: str) -> np.ndarray:
    """A fixed (32, 24) float32 multi-hot test label set, versioned by SHAPES_LABELS_VERSION.

    "test" draws from the training distribution (like i-CLEVR's test.json);
    "new_test" holds combinations absent from training (like new_test.json).
    """
    if which == "test":
        sets = sample_label_sets(np.random.default_rng([SEED, 2]), TEST_SET_SIZE)
    elif which == "new_test":
        sets = _unseen_label_sets(np.random.default_rng([SEED, 3]), TEST_SET_SIZE)
    else:
        raise DatasetError(f"unknown shapes test label set {which!r}; expected 'test' or 'new_test'")
    return multi_hot(sets)
