"""CIFAR-10 from its "python version" batches, read without trusting the pickle inside them.

The batches are Python 2 ``cPickle`` dumps of ``{b"data": uint8 array (N, 3072), b"labels": [..],
b"batch_label": .., b"filenames": [..]}``. Unpickling runs whatever callables a file names, so the
reader resolves only the three globals a numpy array needs and refuses every other one.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from edgekit.data.locate import first_complete, not_found, search_dirs
from edgekit.data.registry import Dataset, DatasetInfo, register
from edgekit.errors import EdgekitError

BATCH_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
IMAGE_SHAPE = (3, 32, 32)
# The paper normalises CIFAR-10 with the ImageNet statistics.
CIFAR10_INFO = DatasetInfo(
    name="cifar10", shape=IMAGE_SHAPE, num_classes=10,
    mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225),
    class_names=("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"))

# numpy pickles an array as _reconstruct(ndarray, ...) plus a dtype; numpy 2 moved _reconstruct from
# numpy.core to numpy._core, and the batches name the old module. Taken from a live reduce so both work.
_RECONSTRUCT = np.empty(0).__reduce__()[0]
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class ArrayOnlyUnpickler(pickle.Unpickler):
    """Builds plain containers and numpy arrays; any other global is refused."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise EdgekitError(f"{self.path}: refusing to load {module}.{name} (a CIFAR-10 batch "
                               f"may only hold numpy arrays, lists, bytes and ints)") from None


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images as uint8 N x 3 x 32 x 32 and int64 labels from one batch file."""
    try:
        with open(path, "rb") as handle:
            batch = ArrayOnlyUnpickler(handle, path).load()
    except EdgekitError:
        raise
    except Exception as exc:  # a malformed pickle can fail in many ways; all mean "not a batch"
        raise EdgekitError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == int(np.prod(IMAGE_SHAPE))):
        raise EdgekitError(f"{path}: expected b'data' to be a uint8 array of shape N x 3072")
    if not (isinstance(labels, list) and len(labels) == len(data)
            and all(isinstance(v, int) and 0 <= v < CIFAR10_INFO.num_classes for v in labels)):
        raise EdgekitError(f"{path}: expected b'labels' to be {len(data)} ints in 0..9")
    return data.reshape(-1, *IMAGE_SHAPE), np.asarray(labels, dtype=np.int64)


def batch_dir(directory: Path) -> Path:
    """``directory/cifar-10-batches-py`` when it exists (as the archive unpacks), else ``directory``."""
    nested = directory / BATCH_DIR
    return nested if nested.is_dir() else directory


def has_batches(directory: Path) -> bool:
    return all((batch_dir(directory) / name).is_file() for name in (*TRAIN_BATCHES, TEST_BATCH))


def locate_cifar10(root=None) -> Path | None:
    found = first_complete(search_dirs("cifar10", root), has_batches)
    return batch_dir(found) if found else None


def to_float(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / np.float32(255)


@register("cifar10", locate=locate_cifar10)
def cifar10(root=None) -> Dataset:
    """CIFAR-10: 50000 train / 10000 test RGB 32 x 32 images."""
    directory = locate_cifar10(root)
    if directory is None:
        needed = f"{BATCH_DIR}/ ({', '.join(TRAIN_BATCHES)}, {TEST_BATCH})"
        raise not_found("cifar10", search_dirs("cifar10", root), needed)
    train = [read_batch(directory / name) for name in TRAIN_BATCHES]
    x_test, y_test = read_batch(directory / TEST_BATCH)
    x_train = to_float(np.concatenate([x for x, _ in train]))
    y_train = np.concatenate([y for _, y in train])
    return Dataset(CIFAR10_INFO, x_train, y_train, to_float(x_test), y_test)
