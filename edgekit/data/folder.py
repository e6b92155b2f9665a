"""An image folder as a dataset: ``PATH/<class>/*.png|jpg``, one image size, a seeded 80/20 split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.data.registry import Dataset, DatasetInfo, register
from edgekit.errors import EdgekitError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
TEST_FRACTION = 0.2
SPLIT_SEED = 0
# Pillow modes kept as grayscale (one channel) or RGB (three channels).
CHANNEL_MODES = {"1": "L", "L": "L", "LA": "L", "P": "RGB", "RGB": "RGB", "RGBA": "RGB"}


def class_files(root: Path) -> dict[str, list[Path]]:
    """Sorted class names -> sorted image files of that class."""
    if not root.is_dir():
        raise EdgekitError(f"image folder {str(root)!r} is not a directory; expected PATH/<class>/*.png|jpg")
    classes = {}
    for class_dir in sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")):
        files = sorted(f for f in class_dir.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EdgekitError(f"class folder {class_dir} holds no .png or .jpg images")
        classes[class_dir.name] = files
    if not classes:
        raise EdgekitError(f"image folder {root} has no class sub-folders; expected {root}/<class>/*.png|jpg")
    return classes


def read_image(path: Path) -> tuple[np.ndarray, str]:
    """The image as uint8 C x H x W and the Pillow mode it was kept in ("L" or "RGB")."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode not in CHANNEL_MODES:
                raise EdgekitError(f"{path}: image mode {image.mode} is not supported; "
                                   f"accepted: {', '.join(CHANNEL_MODES)}")
            mode = CHANNEL_MODES[image.mode]
            pixels = np.asarray(image.convert(mode))
    except (OSError, UnidentifiedImageError) as exc:
        raise EdgekitError(f"{path}: cannot read image ({exc})") from None
    return (pixels[None] if mode == "L" else pixels.transpose(2, 0, 1)), mode


def read_images(files: list[Path]) -> np.ndarray:
    """All images as uint8 N x C x H x W; they must share one size and one colour mode."""
    first, first_mode = read_image(files[0])
    images = [first]
    for path in files[1:]:
        pixels, mode = read_image(path)
        if mode != first_mode:
            raise EdgekitError(f"{path} is {mode} but {files[0]} is {first_mode}; "
                               f"an image folder must be all grayscale or all RGB")
        if pixels.shape != first.shape:
            raise EdgekitError(f"{path} is {pixels.shape[2]}x{pixels.shape[1]} but {files[0]} is "
                               f"{first.shape[2]}x{first.shape[1]}; all images must have one size")
        images.append(pixels)
    return np.stack(images)


def split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per class, a seeded shuffle sends ``TEST_FRACTION`` (rounded down) of the images to the test set."""
    rng = np.random.default_rng(SPLIT_SEED)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = int(len(members) * TEST_FRACTION)
        test.append(members[:cut])
        train.append(members[cut:])
    return np.concatenate(train), np.concatenate(test)


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std over N x C x H x W; a constant channel gets std 1 so normalising is safe."""
    mean = images.mean(axis=(0, 2, 3), dtype=np.float64)
    std = images.std(axis=(0, 2, 3), dtype=np.float64)
    std[std == 0] = 1.0
    return tuple(float(m) for m in mean), tuple(float(s) for s in std)


@register("folder")
def image_folder(path) -> Dataset:
    """Images under ``PATH/<class>/``; class indices follow sorted class names."""
    if not path:
        raise EdgekitError("dataset 'folder:' names no folder; expected folder:PATH with PATH/<class>/*.png|jpg")
    root = Path(path).expanduser().resolve()
    classes = class_files(root)
    files = [f for names in classes.values() for f in names]
    labels = np.concatenate([np.full(len(names), i, np.int64) for i, names in enumerate(classes.values())])
    images = read_images(files).astype(np.float32) / np.float32(255)
    train, test = split_indices(labels)
    mean, std = channel_stats(images[train])
    info = DatasetInfo(name=f"folder:{root}", shape=tuple(images.shape[1:]), num_classes=len(classes),
                       mean=mean, std=std, class_names=tuple(classes))
    return Dataset(info, images[train], labels[train], images[test], labels[test])
