"""Captioned scenes: boxes hold the pasted pixels, captions follow the grammar, draws repeat."""

from __future__ import annotations

import pytest
import torch

from deepnotes.data.scenes import (
    CELL,
    CLASS_WORDS,
    EOS,
    ITEM,
    MAX_WORDS,
    WORDS,
    caption,
    captions,
    compose,
    decode_captions,
    encode_captions,
    make_scenes,
    relation,
    tight_box,
)


def item_pool(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Items with zero background and one random bright rectangle each."""
    g = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, ITEM, ITEM, dtype=torch.uint8)
    for i in range(n):
        y0, x0 = torch.randint(0, 14, (2,), generator=g).tolist()
        h, w = torch.randint(3, 14, (2,), generator=g).tolist()
        images[i, y0:y0 + h, x0:x0 + w] = torch.randint(1, 256, (h, w), generator=g,
                                                         dtype=torch.int64).to(torch.uint8)
    return images, torch.arange(n) % 10


def test_tight_box_of_a_worked_example():
    item = torch.zeros(ITEM, ITEM, dtype=torch.uint8)
    item[5:10, 3:8] = 200  # rows 5..9, columns 3..7
    assert tight_box(item, x=10, y=20) == (13, 25, 18, 30)
    assert tight_box(torch.zeros(ITEM, ITEM, dtype=torch.uint8), 4, 2) == (4, 2, 32, 30)


def test_scene_boxes_contain_exactly_the_pasted_object_pixels():
    images, labels = item_pool()
    scenes = make_scenes(images, labels, 50, torch.Generator().manual_seed(1))
    assert scenes.images.shape == (50, 64, 64) and scenes.images.dtype == torch.uint8
    assert set(scenes.counts.tolist()) == {2, 3}
    covered = torch.zeros_like(scenes.images, dtype=torch.bool)
    for b in range(50):
        k = int(scenes.counts[b])
        cells = scenes.cells[b, :k].tolist()
        assert cells == sorted(set(cells))  # distinct cells, in reading order
        assert (scenes.classes[b, k:] == -1).all() and (scenes.boxes[b, k:] == -1).all()
        for (x0, y0, x1, y1), cell in zip(scenes.boxes[b, :k].tolist(), cells, strict=True):
            # Inside the object's own cell, and tight: every edge row/column holds a pixel.
            cx, cy = (cell % 2) * CELL, (cell // 2) * CELL
            assert cx <= x0 < x1 <= cx + CELL and cy <= y0 < y1 <= cy + CELL
            patch = scenes.images[b, y0:y1, x0:x1] > 0
            assert patch[0].any() and patch[-1].any() and patch[:, 0].any() and patch[:, -1].any()
            covered[b, y0:y1, x0:x1] = True
    assert not ((scenes.images > 0) & ~covered).any()  # no object pixel outside every box


def test_compose_pastes_items_at_their_cells_and_offsets():
    images, _ = item_pool(3)
    canvas, boxes = compose([images[0], images[1]], [1, 2], [(0, 4), (3, 1)])
    torch.testing.assert_close(canvas[4:4 + ITEM, 32:32 + ITEM], images[0])
    torch.testing.assert_close(canvas[33:33 + ITEM, 3:3 + ITEM], images[1])
    assert boxes[0] == tight_box(images[0], 32, 4) and boxes[1] == tight_box(images[1], 3, 33)
    with pytest.raises(ValueError, match="offsets"):
        compose([images[0]], [0], [(5, 0)])


def test_captions_of_worked_examples():
    sneaker, bag, boot, tshirt, dress = 7, 8, 9, 0, 3
    assert caption([sneaker, bag], [0, 1]) == "a sneaker left of a bag"
    assert caption([sneaker, bag, boot], [0, 1, 3]) == "a sneaker left of a bag above a boot"
    assert caption([tshirt, dress, -1], [1, 2, -1]) == "a tshirt above a dress"  # diagonal
    assert caption([bag, boot], [2, 3]) == "a bag left of a boot"
    assert relation(0, 2) == "above" and relation(2, 3) == "left of"
    with pytest.raises(ValueError, match="reading order"):
        relation(3, 1)
    assert CLASS_WORDS[9] == "boot" and CLASS_WORDS[0] == "tshirt"


def test_scenes_repeat_with_the_generator_and_captions_match_their_objects():
    images, labels = item_pool()
    a = make_scenes(images, labels, 20, torch.Generator().manual_seed(5))
    b = make_scenes(images, labels, 20, torch.Generator().manual_seed(5))
    c = make_scenes(images, labels, 20, torch.Generator().manual_seed(6))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a.images, c.images)
    for text, classes, count in zip(captions(a), a.classes.tolist(), a.counts.tolist(),
                                    strict=True):
        nouns = [w for w in text.split() if w in CLASS_WORDS]
        assert nouns == [CLASS_WORDS[k] for k in classes[:count]]


def test_encode_decode_round_trip_and_errors():
    texts = ["a sneaker left of a bag above a boot", "a coat above a dress"]
    tokens = encode_captions(texts)
    assert tokens.shape == (2, MAX_WORDS + 1)
    assert tokens[1, 5] == WORDS.index(EOS) and (tokens[1, 6:] == WORDS.index("<pad>")).all()
    assert decode_captions(tokens) == texts
    with pytest.raises(ValueError, match="unknown words"):
        encode_captions(["a cat"])
    with pytest.raises(ValueError, match="more than"):
        encode_captions(["a bag above"], length=3)
