"""`edgekit data fetch` against a local HTTP server: checksums, resume via Range, clean failure."""

import hashlib
import http.server
import io
import re
import tarfile
import threading

import numpy as np
import pytest

from edgekit.cli import main
from edgekit.data import load_dataset
from edgekit.data.fetch import SOURCES, RemoteFile, Source, fetch
from edgekit.data.idx import write_idx
from edgekit.errors import EdgekitError


class FileServer(http.server.ThreadingHTTPServer):
    """Serves ``files`` by name, honouring ``Range: bytes=N-`` unless told not to; records what it sent."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), RangeHandler)
        self.files = {}
        self.requests = []  # (path, Range header or None)
        self.bytes_sent = 0
        self.ignore_range = False
        self.cut_after = None  # send only this many body bytes, then hang up

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/mirror/"


class RangeHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        range_header = self.headers.get("Range")
        server.requests.append((self.path, range_header))
        name = self.path.rsplit("/", 1)[-1]
        if not self.path.startswith("/mirror/") or name not in server.files:
            self.send_error(404)
            return
        body = server.files[name]
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match and not server.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            body = body[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        sent = body if server.cut_after is None else body[:server.cut_after]
        self.wfile.write(sent)
        server.bytes_sent += len(sent)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    server = FileServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("EDGEKIT_DATA_MIRROR", raising=False)


def md5(data):
    return "md5:" + hashlib.md5(data).hexdigest()


def mnist_files(tmp_path):
    """The four MNIST .gz files, small but in the real IDX format, by name."""
    rng = np.random.default_rng(0)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (50, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 50, dtype=np.uint8),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 5, dtype=np.uint8)}
    files = {}
    for name, array in arrays.items():
        write_idx(tmp_path / name, array)
        files[name] = (tmp_path / name).read_bytes()
        (tmp_path / name).unlink()
    return files


def serve_mnist(server, tmp_path):
    """Put the files on the server; return a source table whose checksums match them."""
    server.files = mnist_files(tmp_path)
    return {"mnist": Source("http://unused.invalid/", tuple(RemoteFile(n, md5(d)) for n, d in server.files.items()))}


def one_file(server, data, name="train-images-idx3-ubyte.gz", checksum=None):
    server.files = {name: data}
    return {"mnist": Source("http://unused.invalid/", (RemoteFile(name, checksum or md5(data)),))}


def test_full_download_into_the_cache_then_loads(server, tmp_path, monkeypatch):
    sources = serve_mnist(server, tmp_path)
    monkeypatch.setenv("EDGEKIT_DATA_MIRROR", server.url)
    directory = fetch("mnist", sources=sources, progress=False)
    assert directory == tmp_path / "cache" / "datasets" / "mnist"
    for name, data in server.files.items():
        assert (directory / name).read_bytes() == data
    assert not list(directory.glob("*.part"))
    ds = load_dataset("mnist")
    assert ds.x_train.shape == (50, 1, 28, 28) and ds.y_test.shape == (5,)

    server.requests.clear()
    fetch("mnist", sources=sources, progress=False)
    assert server.requests == []  # files already there and verified: nothing downloaded again


def test_sha256_checksums_are_verified_too(server, tmp_path):
    data = b"sha256 checked payload"
    sources = one_file(server, data, checksum="sha256:" + hashlib.sha256(data).hexdigest())
    fetch("mnist", dest=tmp_path / "d", mirror=server.url, sources=sources, progress=False)
    assert (tmp_path / "d" / "train-images-idx3-ubyte.gz").read_bytes() == data


def test_resume_requests_only_the_missing_bytes(server, tmp_path):
    data = bytes(range(256)) * 40
    sources = one_file(server, data)
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "train-images-idx3-ubyte.gz.part").write_bytes(data[:3000])
    fetch("mnist", dest=dest, mirror=server.url, sources=sources, progress=False)
    assert server.requests == [("/mirror/train-images-idx3-ubyte.gz", "bytes=3000-")]
    assert server.bytes_sent == len(data) - 3000
    assert (dest / "train-images-idx3-ubyte.gz").read_bytes() == data
    assert not (dest / "train-images-idx3-ubyte.gz.part").exists()


def test_a_server_ignoring_range_restarts_the_file_cleanly(server, tmp_path):
    data = bytes(range(256)) * 40
    sources = one_file(server, data)
    server.ignore_range = True
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "train-images-idx3-ubyte.gz.part").write_bytes(b"stale bytes of some other download")
    fetch("mnist", dest=dest, mirror=server.url, sources=sources, progress=False)
    assert server.requests[0][1] is not None and server.bytes_sent == len(data)
    assert (dest / "train-images-idx3-ubyte.gz").read_bytes() == data


def test_a_whole_part_file_is_verified_and_kept(server, tmp_path):
    data = b"complete but never renamed"
    sources = one_file(server, data)
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "train-images-idx3-ubyte.gz.part").write_bytes(data)
    fetch("mnist", dest=dest, mirror=server.url, sources=sources, progress=False)
    assert server.bytes_sent == 0 and (dest / "train-images-idx3-ubyte.gz").read_bytes() == data


def test_checksum_mismatch_deletes_the_part_and_leaves_no_file(server, tmp_path):
    sources = one_file(server, b"tampered contents", checksum=md5(b"the published contents"))
    dest = tmp_path / "d"
    with pytest.raises(EdgekitError, match="checksum mismatch"):
        fetch("mnist", dest=dest, mirror=server.url, sources=sources, progress=False)
    assert list(dest.iterdir()) == []


def test_an_interrupted_download_leaves_a_resumable_part_only(server, tmp_path):
    data = bytes(range(256)) * 40
    sources = one_file(server, data)
    server.cut_after = 4000
    dest = tmp_path / "d"
    with pytest.raises(EdgekitError, match="interrupted.*run the same command again to resume"):
        fetch("mnist", dest=dest, mirror=server.url, sources=sources, progress=False)
    assert [p.name for p in dest.iterdir()] == ["train-images-idx3-ubyte.gz.part"]
    assert (dest / "train-images-idx3-ubyte.gz.part").read_bytes() == data[:4000]

    server.cut_after = None
    fetch("mnist", dest=dest, mirror=server.url, sources=sources, progress=False)
    assert server.requests[-1][1] == "bytes=4000-"
    assert (dest / "train-images-idx3-ubyte.gz").read_bytes() == data


def test_http_errors_are_reported_with_the_url(server, tmp_path):
    sources = one_file(server, b"x")
    server.files = {}
    with pytest.raises(EdgekitError, match=r"/mirror/train-images-idx3-ubyte\.gz failed: HTTP 404"):
        fetch("mnist", dest=tmp_path / "d", mirror=server.url, sources=sources, progress=False)


def tar_gz(members):
    """A .tar.gz from (TarInfo, bytes or None) pairs."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if data is not None else 0
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def member(name, data=None, kind=tarfile.REGTYPE, target=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, data


def cifar_source(server, archive):
    server.files = {"cifar-10-python.tar.gz": archive}
    return {"cifar10": Source("http://unused.invalid/", (
        RemoteFile("cifar-10-python.tar.gz", md5(archive), unpacks_to="cifar-10-batches-py"),))}


def test_cifar_archive_is_unpacked_and_removed(server, tmp_path):
    archive = tar_gz([member("cifar-10-batches-py", kind=tarfile.DIRTYPE),
                      member("cifar-10-batches-py/data_batch_1", b"batch one"),
                      member("cifar-10-batches-py/test_batch", b"test")])
    sources = cifar_source(server, archive)
    directory = fetch("cifar10", mirror=server.url, sources=sources, progress=False)
    assert (directory / "cifar-10-batches-py" / "data_batch_1").read_bytes() == b"batch one"
    assert sorted(p.name for p in directory.iterdir()) == ["cifar-10-batches-py"]

    server.requests.clear()
    fetch("cifar10", mirror=server.url, sources=sources, progress=False)
    assert server.requests == []


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink", "hardlink"])
def test_archive_members_outside_the_destination_are_refused(server, tmp_path, kind):
    escaped = tmp_path / "escaped"
    bad = {"dotdot": member("cifar-10-batches-py/../../../../escaped", b"outside"),
           "absolute": member(str(escaped), b"outside"),
           "symlink": member("cifar-10-batches-py/link", kind=tarfile.SYMTYPE, target=str(escaped)),
           "hardlink": member("cifar-10-batches-py/hard", kind=tarfile.LNKTYPE, target="/etc/passwd")}[kind]
    archive = tar_gz([member("cifar-10-batches-py/data_batch_1", b"fine"), bad])
    sources = cifar_source(server, archive)
    dest = tmp_path / "area" / "d"
    with pytest.raises(EdgekitError, match="refusing member"):
        fetch("cifar10", dest=dest, mirror=server.url, sources=sources, progress=False)
    assert not escaped.exists()
    assert sorted(p.name for p in dest.iterdir()) == ["cifar-10-python.tar.gz"]  # no half-unpacked folder


def test_cli_fetch_uses_the_mirror_option(server, tmp_path, monkeypatch, capsys):
    sources = serve_mnist(server, tmp_path)
    monkeypatch.setitem(SOURCES, "mnist", sources["mnist"])
    assert main(["data", "fetch", "mnist", "--mirror", server.url, "--dest", str(tmp_path / "d")]) == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(server.files)
    assert str(tmp_path / "d") in capsys.readouterr().out


def test_cli_unknown_dataset_exits_2_with_one_line(capsys):
    assert main(["data", "fetch", "imagenet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'imagenet'" in err and "cifar10, fashion-mnist, mnist" in err
