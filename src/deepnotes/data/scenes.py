"""Captioned scenes: 64x64 canvases holding 2-3 Fashion-MNIST items, with known boxes.

The data of the captioning experiment (notes 6.2.1). A scene is a 64x64 uint8 canvas cut
into a 2x2 grid of 32x32 cells; 2 or 3 distinct cells each receive one 28x28 item, moved
inside its cell by a random offset of 0..4 pixels in x and y (so items never overlap). The
box of an object is the tight box ``(x0, y0, x1, y1)`` of its nonzero pixels on the canvas,
``x1``/``y1`` exclusive: every pasted pixel lies inside it and each edge touches one.

Captions name the objects in reading order (top row first, left to right) and join
neighbours with their relation, which is always true of the pair:

* ``"left of"`` when the next object sits in the same row,
* ``"above"`` when it sits in the next row.

So cells 0 (top left) and 1 (top right) give ``"a sneaker left of a bag"``; cells 0, 1, 3
give ``"a sneaker left of a bag above a boot"``. Class names are one word each
(:data:`CLASS_WORDS`: ``"tshirt"`` for T-shirt/top, ``"boot"`` for ankle boot).

Everything random comes from the ``torch.Generator`` passed in: the same generator state
gives the same scenes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

CANVAS = 64
CELL = 32  # a 2x2 grid of 32x32 cells
GRID = CANVAS // CELL
ITEM = 28
JITTER = CELL - ITEM  # offsets 0..JITTER inside a cell
MAX_OBJECTS = 3
CLASS_WORDS = ("tshirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
               "sneaker", "bag", "boot")  # Fashion-MNIST classes 0..9, one word each
PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
WORDS = (PAD, BOS, EOS, "a", "left", "of", "above", *CLASS_WORDS)
MAX_WORDS = 2 * MAX_OBJECTS + 2 * (MAX_OBJECTS - 1)  # "a X left of a Y left of a Z": 10


class Scenes(NamedTuple):
    """A batch of scenes; objects are listed in caption (reading) order, unused slots -1.

    Attributes:
        images: uint8 ``(N, 64, 64)``.
        classes: int64 ``(N, 3)``, class index per object, -1 where a scene has fewer.
        cells: int64 ``(N, 3)``, grid cell 0..3 (row-major) per object, -1 where unused.
        boxes: int64 ``(N, 3, 4)``, ``(x0, y0, x1, y1)`` per object (x1, y1 exclusive),
            -1 where unused.
        counts: int64 ``(N,)``, objects per scene (2 or 3).
    """

    images: torch.Tensor
    classes: torch.Tensor
    cells: torch.Tensor
    boxes: torch.Tensor
    counts: torch.Tensor


def tight_box(item: torch.Tensor, x: int, y: int) -> tuple[int, int, int, int]:
    """``(x0, y0, x1, y1)`` of the nonzero pixels of ``item`` (H, W) pasted at ``(x, y)``;
    the whole item where it has none."""
    rows = torch.nonzero(item.any(dim=1)).flatten()
    cols = torch.nonzero(item.any(dim=0)).flatten()
    if len(rows) == 0:
        return x, y, x + item.shape[1], y + item.shape[0]
    return (x + int(cols[0]), y + int(rows[0]), x + int(cols[-1]) + 1, y + int(rows[-1]) + 1)


def compose(items: list[torch.Tensor], cells: list[int], offsets: list[tuple[int, int]]
            ) -> tuple[torch.Tensor, list[tuple[int, int, int, int]]]:
    """Paste 28x28 ``items`` into grid ``cells`` at ``(dx, dy)`` offsets: the canvas and
    each item's tight box."""
    canvas = torch.zeros(CANVAS, CANVAS, dtype=torch.uint8)
    boxes = []
    for item, cell, (dx, dy) in zip(items, cells, offsets, strict=True):
        if not 0 <= dx <= JITTER or not 0 <= dy <= JITTER:
            raise ValueError(f"offsets must lie in 0..{JITTER}, got {(dx, dy)}")
        x = (cell % GRID) * CELL + dx
        y = (cell // GRID) * CELL + dy
        region = canvas[y:y + ITEM, x:x + ITEM]
        torch.maximum(region, item, out=region)
        boxes.append(tight_box(item, x, y))
    return canvas, boxes


def make_scenes(images: torch.Tensor, labels: torch.Tensor, n: int,
                generator: torch.Generator) -> Scenes:
    """``n`` scenes from the item pool ``images`` uint8 ``(M, 28, 28)`` / ``labels`` ``(M,)``.

    Per scene: 2 or 3 objects (equally likely), distinct cells drawn uniformly, items drawn
    from the pool with replacement, offsets uniform in 0..4.
    """
    if images.shape[1:] != (ITEM, ITEM):
        raise ValueError(f"items must be {ITEM}x{ITEM}, got {tuple(images.shape[1:])}")
    counts = torch.randint(2, MAX_OBJECTS + 1, (n,), generator=generator)
    order = torch.rand(n, GRID * GRID, generator=generator).argsort(dim=1)
    picks = torch.randint(len(labels), (n, MAX_OBJECTS), generator=generator)
    offsets = torch.randint(0, JITTER + 1, (n, MAX_OBJECTS, 2), generator=generator)
    out_images = torch.zeros(n, CANVAS, CANVAS, dtype=torch.uint8)
    classes = torch.full((n, MAX_OBJECTS), -1, dtype=torch.long)
    cells = torch.full((n, MAX_OBJECTS), -1, dtype=torch.long)
    boxes = torch.full((n, MAX_OBJECTS, 4), -1, dtype=torch.long)
    for i in range(n):
        k = int(counts[i])
        chosen = sorted(order[i, :k].tolist())  # reading order: the caption's order
        items = [images[j] for j in picks[i, :k].tolist()]
        canvas, item_boxes = compose(items, chosen, [tuple(o) for o in offsets[i, :k].tolist()])
        out_images[i] = canvas
        classes[i, :k] = labels[picks[i, :k]]
        cells[i, :k] = torch.tensor(chosen)
        boxes[i, :k] = torch.tensor(item_boxes)
    return Scenes(out_images, classes, cells, boxes, counts)


def relation(cell_a: int, cell_b: int) -> str:
    """How the object in ``cell_a`` stands to the next one (in reading order) in ``cell_b``."""
    if cell_b <= cell_a:
        raise ValueError(f"cells must come in reading order, got {cell_a} then {cell_b}")
    return "left of" if cell_a // GRID == cell_b // GRID else "above"


def caption(classes: list[int], cells: list[int]) -> str:
    """The caption of objects of ``classes`` in ``cells`` (reading order, -1 entries
    ignored), e.g. ``caption([7, 8], [0, 1]) == "a sneaker left of a bag"``."""
    pairs = [(c, k) for c, k in zip(classes, cells, strict=True) if c >= 0]
    words = []
    for i, (cls, cell) in enumerate(pairs):
        if i:
            words.append(relation(pairs[i - 1][1], cell))
        words.append(f"a {CLASS_WORDS[cls]}")
    return " ".join(words)


def captions(scenes: Scenes) -> list[str]:
    """The caption of every scene."""
    return [caption(c, k) for c, k in zip(scenes.classes.tolist(), scenes.cells.tolist(),
                                          strict=True)]


def encode_captions(texts: list[str], length: int = MAX_WORDS + 1) -> torch.Tensor:
    """Word indices into :data:`WORDS` ``(N, length)``: the words, ``<eos>``, then
    ``<pad>``. Raises on unknown words."""
    index = {w: i for i, w in enumerate(WORDS)}
    out = torch.full((len(texts), length), index[PAD], dtype=torch.long)
    for row, text in enumerate(texts):
        words = [*text.split(), EOS]
        if len(words) > length:
            raise ValueError(f"caption {text!r} has more than {length - 1} words")
        unknown = [w for w in words if w not in index]
        if unknown:
            raise ValueError(f"unknown words {unknown} in caption {text!r}")
        out[row, :len(words)] = torch.tensor([index[w] for w in words])
    return out


def decode_captions(tokens: torch.Tensor) -> list[str]:
    """Inverse of :func:`encode_captions`: words up to the first ``<eos>`` (``<pad>`` and
    ``<bos>`` dropped)."""
    texts = []
    for row in tokens.tolist():
        words = []
        for t in row:
            word = WORDS[t]
            if word == EOS:
                break
            if word not in (PAD, BOS):
                words.append(word)
        texts.append(" ".join(words))
    return texts
