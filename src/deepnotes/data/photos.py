"""The photographs that scikit-image ships, as float tensors in [0, 1], for the restoration
experiments of notes 8.14-8.16.

The test images (``camera``, ``astronaut``, ``coffee``) and the images learned denoisers
train on are disjoint sets, and :func:`load_photo` refuses to hand a test image out as
training data. Every load records its provenance (name, size, crop) in the running
experiment's summary.
"""

from __future__ import annotations

import numpy as np
import torch

from deepnotes.engine import provenance

TEST_PHOTOS = ("camera", "astronaut", "coffee")
TRAIN_PHOTOS = ("chelsea", "rocket", "brick", "grass", "gravel", "moon", "coins", "clock",
                "horse", "hubble_deep_field")


def _raw(name: str) -> np.ndarray:
    import skimage.data  # heavy, imported on first use only

    if name not in TEST_PHOTOS + TRAIN_PHOTOS:
        raise ValueError(f"unknown photo {name!r}: expected one of "
                         f"{', '.join(TEST_PHOTOS + TRAIN_PHOTOS)}")
    return np.asarray(getattr(skimage.data, name)())


def _to_grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image.astype(np.float64)
    # ITU-R BT.601 luma, the weights skimage.color.rgb2gray also uses up to rounding
    rgb = image[..., :3].astype(np.float64)
    return rgb @ np.array([0.2125, 0.7154, 0.0721])


def load_photo(name: str, size: int | None = None, grey: bool = True,
               split: str = "test") -> torch.Tensor:
    """One bundled photograph as a (C, H, W) float32 tensor in [0, 1].

    Args:
        name: a scikit-image image name; ``split="test"`` needs one of :data:`TEST_PHOTOS`,
            ``split="train"`` one of :data:`TRAIN_PHOTOS` (the two never mix).
        size: side of the centred square crop (``None``: the whole image).
        grey: convert colour to luma (C = 1); else keep RGB (C = 3; grey images stay C = 1).
        split: ``"test"`` or ``"train"``.
    """
    allowed = {"test": TEST_PHOTOS, "train": TRAIN_PHOTOS}
    if split not in allowed:
        raise ValueError(f"split must be 'test' or 'train', got {split!r}")
    if name not in allowed[split]:
        raise ValueError(f"{name!r} is not a {split} photo: expected one of "
                         f"{', '.join(allowed[split])} (test and training photos never mix)")
    image = _raw(name)
    if image.dtype == bool:
        image = image.astype(np.float64) * 255.0
    if grey:
        image = _to_grey(image)
    array = image.astype(np.float64) / 255.0
    if array.ndim == 2:
        array = array[None]
    else:
        array = np.moveaxis(array[..., :3], -1, 0)
    height, width = array.shape[1:]
    subset = None
    if size is not None:
        if size < 1 or size > min(height, width):
            raise ValueError(f"crop size must be in [1, {min(height, width)}] for {name!r} "
                             f"({height}x{width}), got {size}")
        top, left = (height - size) // 2, (width - size) // 2
        array = array[:, top:top + size, left:left + size]
        subset = f"centre crop {size}x{size}"
    provenance.record_data(f"skimage.data.{name}", split, 1, subset=subset)
    return torch.from_numpy(np.ascontiguousarray(array)).float().clamp(0.0, 1.0)
