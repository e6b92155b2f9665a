"""The dataset loaders: IDX (MNIST, Fashion-MNIST), CIFAR-10 python batches, image folders, `edgekit data list`."""

import gzip
import os
import pickle
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgekit.cli import main
from edgekit.data import load_dataset
from edgekit.data.cifar import read_batch
from edgekit.data.idx import read_idx, write_idx
from edgekit.errors import EdgekitError

IDX_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))


def write_mnist_files(directory, n_train=6, n_test=3, gz=(True, False, True, False), seed=0):
    """Small MNIST-format IDX files; returns the uint8 images and labels written."""
    rng = np.random.default_rng(seed)
    arrays = (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              rng.integers(0, 10, n_train, dtype=np.uint8),
              rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              rng.integers(0, 10, n_test, dtype=np.uint8))
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array, zipped in zip(IDX_STEMS, arrays, gz):
        write_idx(directory / (stem + (".gz" if zipped else "")), array)
    return arrays


# ---------------------------------------------------------------- IDX


def test_read_idx_parses_big_endian_header_and_values(tmp_path):
    path = tmp_path / "values.idx"
    # magic 0x00000B02: int16, two dimensions; dims 2 x 2; values big-endian.
    path.write_bytes(b"\x00\x00\x0b\x02" + struct.pack(">II", 2, 2) + struct.pack(">hhhh", 258, -2, 1, 32767))
    assert read_idx(path).tolist() == [[258, -2], [1, 32767]]


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip_raw_and_gzipped(tmp_path, name, dtype):
    array = (np.arange(24).reshape(2, 3, 4) * 37 - 100).astype(dtype)
    write_idx(tmp_path / name, array)
    assert (tmp_path / name).read_bytes()[:2] == (b"\x1f\x8b" if name.endswith(".gz") else b"\x00\x00")
    loaded = read_idx(tmp_path / name)
    assert loaded.dtype == np.dtype(dtype) and loaded.shape == (2, 3, 4)
    np.testing.assert_array_equal(loaded, array)


@pytest.mark.parametrize("content, message", [
    (b"\x00\x01\x08\x01" + struct.pack(">I", 2) + b"\x01\x02", "not an IDX file"),
    (b"\x00\x00\x07\x01" + struct.pack(">I", 2) + b"\x01\x02", "not an IDX file"),
    (b"", "not an IDX file"),
    (b"\x00\x00\x08\x03" + struct.pack(">I", 2), "truncated IDX header"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x01\x02", "truncated: 2 data bytes, expected 5"),
    (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x01\x02", "trailing bytes"),
])
def test_corrupt_idx_is_refused_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(EdgekitError, match=message) as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_truncated_gzip_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "cut.gz"
    noise = np.random.default_rng(0).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    whole = gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 1000) + noise)
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(EdgekitError, match="cannot read") as error:
        read_idx(path)
    assert str(path) in str(error.value)


def test_mnist_loads_from_root_mixing_gzipped_and_raw_files(tmp_path):
    x_train, y_train, x_test, y_test = write_mnist_files(tmp_path / "mnist")
    ds = load_dataset("mnist", root=tmp_path / "mnist")
    assert ds.x_train.shape == (6, 1, 28, 28) and ds.x_test.shape == (3, 1, 28, 28)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    np.testing.assert_allclose(ds.x_train[:, 0] * 255, x_train, atol=1e-4)
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert ds.info.mean == (0.5,) and ds.info.std == (0.5,) and ds.info.shape == (1, 28, 28)


def test_mnist_is_found_in_the_download_cache(tmp_path):
    _, y_train, _, _ = write_mnist_files(tmp_path / "cache" / "datasets" / "mnist")
    np.testing.assert_array_equal(load_dataset("mnist").y_train, y_train)


def test_image_label_count_mismatch_names_both_files(tmp_path):
    write_mnist_files(tmp_path, gz=(False,) * 4)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(2, np.uint8))
    with pytest.raises(EdgekitError, match=r"t10k-images-idx3-ubyte holds 3 images but .*t10k-labels-idx1-ubyte holds 2"):
        load_dataset("mnist", root=tmp_path)


def test_missing_files_say_where_they_were_looked_for_and_how_to_get_them(tmp_path):
    with pytest.raises(EdgekitError) as error:
        load_dataset("mnist")
    assert str(tmp_path / "cache" / "datasets" / "mnist") in str(error.value)
    assert "edgekit data fetch mnist" in str(error.value)
    with pytest.raises(EdgekitError) as error:
        load_dataset("fashion-mnist", root=tmp_path / "nowhere")
    message = str(error.value)
    assert str(tmp_path / "nowhere") in message and "\n" not in message
    assert "edgekit data fetch fashion-mnist" in message and "apt-get install dataset-fashion-mnist" in message


def test_fashion_mnist_from_the_debian_package():
    debian = Path("/usr/share/datasets/fashion-mnist")
    if not debian.is_dir() and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update"], capture_output=True, timeout=600, check=False)
        subprocess.run(["apt-get", "install", "-y", "dataset-fashion-mnist"], capture_output=True, timeout=600,
                       check=False)
    if not debian.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{debian} is missing: apt-get install dataset-fashion-mnist")
        pytest.skip(f"{debian} is missing (apt-get install dataset-fashion-mnist)")
    ds = load_dataset("fashion-mnist")
    assert ds.x_train.shape == (60000, 1, 28, 28) and ds.x_test.shape == (10000, 1, 28, 28)
    assert ds.y_train.shape == (60000,) and ds.y_test.shape == (10000,)
    assert ds.y_train[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]  # the published first labels
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() == 1.0
    assert ds.info.class_names[9] == "Ankle boot" and ds.info.mean == (0.5,) and ds.info.std == (0.5,)


# ---------------------------------------------------------------- CIFAR-10

# What numpy's array reduce names; the originals were written by numpy 1 as numpy.core.multiarray.
RECONSTRUCT = np.empty(0).__reduce__()[0]


class Python2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the CIFAR-10 batches: str as BINSTRING, numpy 1 names."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_binstring(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin-1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_binstring
    dispatch[str] = save_binstring

    def save_global(self, obj, name=None):
        if obj is RECONSTRUCT:
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
        else:
            super().save_global(obj, name)


def write_batch(path, images, labels, label=b"training batch 1 of 5"):
    """A CIFAR-10 python batch: protocol 2, bytes keys, uint8 (N, 3072) data, a list of labels."""
    batch = {b"data": images.reshape(len(images), 3072), b"labels": [int(v) for v in labels],
             b"batch_label": label, b"filenames": [b"img_%d.png" % i for i in range(len(images))]}
    with open(path, "wb") as handle:
        Python2Pickler(handle, protocol=2).dump(batch)


def write_cifar(directory, per_batch=2, n_test=3, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        n = n_test if name == "test_batch" else per_batch
        images = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
        labels = rng.integers(0, 10, n)
        write_batch(directory / name, images, labels)
        written[name] = (images, labels)
    return written


def test_cifar_batches_written_like_the_originals_load(tmp_path):
    written = write_cifar(tmp_path / "cifar-10-batches-py")
    raw = (tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes()
    assert raw.startswith(b"\x80\x02}") and b"cnumpy.core.multiarray\n_reconstruct\n" in raw and b"U\x04data" in raw

    ds = load_dataset("cifar10", root=tmp_path)
    assert ds.x_train.shape == (10, 3, 32, 32) and ds.x_test.shape == (3, 3, 32, 32)
    assert ds.x_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    train_images = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_allclose(ds.x_train * 255, train_images, atol=1e-4)  # rows are R, G, B planes
    np.testing.assert_array_equal(ds.y_test, written["test_batch"][1])
    assert ds.info.mean == (0.485, 0.456, 0.406) and ds.info.std == (0.229, 0.224, 0.225)
    assert ds.info.class_names[0] == "airplane" and ds.info.shape == (3, 32, 32)


def test_cifar_loads_from_the_download_cache(tmp_path):
    write_cifar(tmp_path / "cache" / "datasets" / "cifar10" / "cifar-10-batches-py")
    assert load_dataset("cifar10").x_train.shape == (10, 3, 32, 32)


class RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class CallsNumpyLoad:
    def __reduce__(self):
        return np.load, ("/etc/passwd",)


@pytest.mark.parametrize("payload_kind", ["os.system", "numpy.load"])
def test_a_malicious_pickle_is_refused_without_running_anything(tmp_path, payload_kind):
    marker = tmp_path / "pwned"
    payload = RunsCommand(marker) if payload_kind == "os.system" else CallsNumpyLoad()
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": payload, b"labels": []}, protocol=2))
    with pytest.raises(EdgekitError, match="refusing to load") as error:
        read_batch(path)
    assert str(path) in str(error.value) and not marker.exists()


@pytest.mark.parametrize("batch, message", [
    ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, "N x 3072"),
    ({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}, "N x 3072"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}, "2 ints in 0..9"),
    ({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, "2 ints in 0..9"),
    ([1, 2], "N x 3072"),
])
def test_a_batch_of_the_wrong_shape_is_refused(tmp_path, batch, message):
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as handle:
        Python2Pickler(handle, protocol=2).dump(batch)
    with pytest.raises(EdgekitError, match=message):
        read_batch(path)


def test_a_file_that_is_not_a_pickle_is_refused(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(b"not a pickle at all")
    with pytest.raises(EdgekitError, match="not a CIFAR-10 python batch"):
        read_batch(path)


# ---------------------------------------------------------------- image folders


def write_folder(root, classes=("zebra", "ant", "moth"), per_class=5, size=(8, 6), mode="RGB", seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
            Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(root / name / f"{i}.png")
    (root / "ant" / "notes.txt").write_text("not an image: ignored")


def test_folder_dataset_classes_split_and_statistics(tmp_path):
    write_folder(tmp_path / "imgs")
    ds = load_dataset(f"folder:{tmp_path / 'imgs'}")
    assert ds.info.class_names == ("ant", "moth", "zebra") and ds.info.num_classes == 3
    assert ds.info.shape == (3, 6, 8) and ds.x_train.shape == (12, 3, 6, 8) and ds.x_test.shape == (3, 3, 6, 8)
    assert sorted(ds.y_test.tolist()) == [0, 1, 2]
    np.testing.assert_allclose(ds.info.mean, ds.x_train.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(ds.info.std, ds.x_train.std(axis=(0, 2, 3)), rtol=1e-5)

    from PIL import Image
    first_ant = np.asarray(Image.open(tmp_path / "imgs" / "ant" / "0.png")).transpose(2, 0, 1) / 255
    in_train = [np.allclose(x, first_ant) for x in ds.x_train[ds.y_train == 0]]
    in_test = [np.allclose(x, first_ant) for x in ds.x_test[ds.y_test == 0]]
    assert sum(in_train) + sum(in_test) == 1

    again = load_dataset(f"folder:{tmp_path / 'imgs'}")
    np.testing.assert_array_equal(again.x_test, ds.x_test)
    np.testing.assert_array_equal(again.y_train, ds.y_train)


def test_grayscale_folder_keeps_one_channel(tmp_path):
    write_folder(tmp_path / "gray", classes=("a", "b", "ant"), mode="L")
    ds = load_dataset(f"folder:{tmp_path / 'gray'}")
    assert ds.info.shape == (1, 6, 8) and len(ds.info.mean) == 1


def test_an_image_of_another_size_is_named(tmp_path):
    from PIL import Image

    write_folder(tmp_path / "imgs")
    odd = tmp_path / "imgs" / "moth" / "odd.png"
    Image.new("RGB", (9, 6)).save(odd)
    with pytest.raises(EdgekitError, match=r"odd\.png is 9x6 but .* is 8x6"):
        load_dataset(f"folder:{tmp_path / 'imgs'}")


def test_mixed_grayscale_and_rgb_is_refused(tmp_path):
    from PIL import Image

    write_folder(tmp_path / "imgs")
    Image.new("L", (8, 6)).save(tmp_path / "imgs" / "zebra" / "gray.png")
    with pytest.raises(EdgekitError, match=r"gray\.png is L but"):
        load_dataset(f"folder:{tmp_path / 'imgs'}")


def test_folder_without_class_folders_or_images_is_refused(tmp_path):
    with pytest.raises(EdgekitError, match="names no folder"):
        load_dataset("folder:")
    with pytest.raises(EdgekitError, match="not a directory"):
        load_dataset(f"folder:{tmp_path / 'missing'}")
    (tmp_path / "flat").mkdir()
    with pytest.raises(EdgekitError, match="no class sub-folders"):
        load_dataset(f"folder:{tmp_path / 'flat'}")
    (tmp_path / "flat" / "cats").mkdir()
    with pytest.raises(EdgekitError, match="holds no .png or .jpg images"):
        load_dataset(f"folder:{tmp_path / 'flat'}")


def test_unknown_dataset_name():
    with pytest.raises(EdgekitError, match="unknown dataset 'imagenet'.*cifar10, fashion-mnist"):
        load_dataset("imagenet")


# ---------------------------------------------------------------- edgekit data list


def test_data_list_shows_where_files_are_found(tmp_path, capsys):
    write_mnist_files(tmp_path / "cache" / "datasets" / "mnist")
    assert main(["data", "list"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert str(tmp_path / "cache" / "datasets" / "mnist") in lines["mnist"]
    assert "not downloaded" in lines["cifar10"] and "edgekit data fetch cifar10" in lines["cifar10"]
    assert "mnist_5k" in lines["mnist-subset"] and "folder:PATH" in lines
