"""Downloads against a local HTTP server that serves the real files (no internet needed).

Covers: success through a mirror and through canonical-style sources (direct files and UCI-style
zip archives, nested, with ``.Z`` members), checksum and content mismatches, transfers cut short,
retries, unsafe archive members, an unreachable server, existing files, read-only data folders,
and the ``fetch`` command.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import http.server
import socket
import threading
import urllib.parse
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from ipcae.data import download as dl
from ipcae.data import files, load_splits
from ipcae.data import har as har_mod
from ipcae.data.fetch import main as fetch_main
from ipcae.errors import DataError

MNIST = [f"mnist/{name}" for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")]  # fmt: skip
MICE = "mice_protein/Data_Cortex_Nuclear.xls"
MICE_ZIP = "mice_protein/mice+protein+expression.zip"


# --- a local HTTP server ---------------------------------------------------------------------------

Rule = Callable[[http.server.BaseHTTPRequestHandler], None]


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        relpath = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        self.server.hits.append(relpath)
        rule = self.server.rules.get(relpath)
        if rule is not None:
            rule(self)
        else:
            super().do_GET()


@dataclass
class Server:
    url: str
    rules: dict[str, Rule] = field(default_factory=dict)
    hits: list[str] = field(default_factory=list)


@pytest.fixture
def serve() -> Iterator[Callable[[Path], Server]]:
    """``serve(folder)`` starts a server for ``folder`` on 127.0.0.1 (a free port)."""
    running: list[http.server.ThreadingHTTPServer] = []

    def start(folder: Path) -> Server:
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
        server = Server(f"http://127.0.0.1:{httpd.server_port}/")
        httpd.rules, httpd.hits = server.rules, server.hits
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        running.append(httpd)
        return server

    yield start
    for httpd in running:
        httpd.shutdown()
        httpd.server_close()


def send(body: bytes, *, length: int | None = None) -> Rule:
    """A rule that answers 200 with ``body``, announcing ``length`` bytes (default: the truth)."""

    def rule(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(body) if length is None else length))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        handler.close_connection = True

    return rule


def cut_halfway(body: bytes) -> Rule:
    """Announce the whole body, send half of it, close the connection."""
    return send(body[: len(body) // 2], length=len(body))


def altered(body: bytes, at: int = 100) -> bytes:
    """``body`` with one byte flipped."""
    return body[:at] + bytes([body[at] ^ 0xFF]) + body[at + 1 :]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def all_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private cache and fallback folder, no mirror from the environment, no retry delays."""
    monkeypatch.setenv("IPCAE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("IPCAE_DATA_MIRROR", raising=False)
    monkeypatch.setattr(dl, "BACKOFF_S", 0.0)


def replace_source(monkeypatch: pytest.MonkeyPatch, name: str, **changes: object) -> files.DataSource:
    """Point a dataset's canonical sources somewhere else for one test."""
    source = dataclasses.replace(files.data_source(name), **changes)
    monkeypatch.setitem(files._SOURCES, name, source)
    return source


# --- success ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "isolet", "coil20", "mice_protein"])
def test_mirror_with_the_data_dir_layout(name: str, real_data_dir: Path, tmp_path: Path, serve: Callable) -> None:
    server = serve(real_data_dir)
    data = tmp_path / "data"
    found = files.ensure_files(name, data, mirror=server.url)
    assert found and all(p.is_relative_to(data) for p in found.values())
    for path in found.values():
        original = real_data_dir / path.relative_to(data)
        assert path.read_bytes() == original.read_bytes()
    # Only the final files remain: no temporary files next to them.
    assert sorted(all_files(data)) == sorted(found.values())
    # A second call finds them locally and asks the server for nothing.
    before = len(server.hits)
    assert files.ensure_files(name, data, mirror=server.url) == found
    assert len(server.hits) == before


def test_load_splits_downloads_through_the_mirror_variable(
    real_data_dir: Path, tmp_path: Path, serve: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IPCAE_DATA_MIRROR", serve(real_data_dir).url)
    assert load_splits("coil20", tmp_path / "data").sizes == (864, 288, 288)
    assert (tmp_path / "data" / "coil20" / "COIL20.mat").is_file()


def test_canonical_direct_urls(real_data_dir: Path, tmp_path: Path, serve: Callable, monkeypatch) -> None:
    server = serve(real_data_dir / "mnist")
    source = files.data_source("mnist")
    # The first canonical location is down, the second one serves: the second is used.
    dead = closed_port_url()
    moved = tuple(dataclasses.replace(f, urls=(dead + Path(f.relpath).name, server.url + Path(f.relpath).name))
                  for f in source.files)  # fmt: skip
    replace_source(monkeypatch, "mnist", files=moved)
    found = files.ensure_files("mnist", tmp_path / "data")
    for rel in MNIST:
        assert found[rel].read_bytes() == (real_data_dir / rel).read_bytes()


def make_zip(path: Path, members: dict[str, bytes | Path]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, content in members.items():
            if isinstance(content, Path):
                zf.write(content, name)
            else:
                zf.writestr(name, content)
    return path


def test_mice_protein_from_the_uci_archive(
    real_data_dir: Path, tmp_path: Path, serve: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    make_zip(site / "342.zip", {"Data_Cortex_Nuclear.xls": real_data_dir / MICE})
    server = serve(site)
    replace_source(monkeypatch, "mice_protein", archive_url=server.url + "342.zip")
    found = files.ensure_files("mice_protein", tmp_path / "data")
    assert found[MICE].read_bytes() == (real_data_dir / MICE).read_bytes()
    assert all_files(tmp_path / "data") == [found[MICE]]  # the archive itself is not kept


def test_mirror_falls_back_to_the_archive(real_data_dir: Path, tmp_path: Path, serve: Callable) -> None:
    site = tmp_path / "site"
    make_zip(site / MICE_ZIP, {"Data_Cortex_Nuclear.xls": real_data_dir / MICE})
    server = serve(site)
    found = files.ensure_files("mice_protein", tmp_path / "data", mirror=server.url)
    assert found[MICE].read_bytes() == (real_data_dir / MICE).read_bytes()
    assert server.hits == [MICE, MICE_ZIP]  # the plain file first (404), then the archive


def test_isolet_archive_with_compress_members(
    real_data_dir: Path, tmp_path: Path, serve: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    # As UCI ships it: the test file LZW-compressed (the canonical bytes); the training file is
    # stored plain here since no .Z of it is available (the shared one is gzipped).
    train_text = gzip.decompress((real_data_dir / "isolet" / "isolet1+2+3+4.data.gz").read_bytes())
    make_zip(site / "isolet.zip", {"isolet1+2+3+4.data": train_text,
                                   "isolet5.data.Z": real_data_dir / "isolet" / "isolet5.data.Z"})  # fmt: skip
    server = serve(site)
    replace_source(monkeypatch, "isolet", archive_url=server.url + "isolet.zip")
    found = files.ensure_files("isolet", tmp_path / "data")
    assert found["isolet/isolet5.data"].name == "isolet5.data"  # decompressed on extraction
    test_text = gzip.decompress((real_data_dir / "isolet" / "isolet5.data.gz").read_bytes())
    assert found["isolet/isolet5.data"].read_bytes() == test_text
    assert found["isolet/isolet1+2+3+4.data"].read_bytes() == train_text


def test_har_nested_uci_archive(
    real_data_dir: Path, tmp_path: Path, serve: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    from test_datasets import write_har_copy

    written = write_har_copy(tmp_path / "made", real_data_dir, n_train=50, n_test=20)
    folder = tmp_path / "made" / "har"
    inner = make_zip(
        tmp_path / "inner.zip",
        {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}
        | {"__MACOSX/UCI HAR Dataset/._features.txt": b"\x00\x05\x16\x07"},
    )
    site = tmp_path / "site"
    make_zip(site / "240.zip", {"UCI HAR Dataset.zip": inner, "UCI HAR Dataset.names": b"names\n"})
    server = serve(site)
    replace_source(monkeypatch, "har", archive_url=server.url + "240.zip")
    # The content checks know the full dataset's sizes; this copy is smaller.
    counts = {split: (len(y), tuple(int((y == c).sum()) for c in range(1, 7))) for split, (_, y) in written.items()}
    monkeypatch.setattr(har_mod, "EXPECTED", counts)
    data = tmp_path / "data"
    found = files.ensure_files("har", data)
    assert sorted(found) == sorted(f.relpath for f in har_mod.SOURCE.files)
    for rel, path in found.items():
        assert path == data / rel and path.read_bytes() == (tmp_path / "made" / rel).read_bytes()
    assert sorted(all_files(data)) == sorted(found.values())  # no __MACOSX, no .names, no zips
    assert load_splits("har", data).sizes == (40, 10, 20)


# --- failures --------------------------------------------------------------------------------------


def test_checksum_mismatch_leaves_nothing(real_data_dir: Path, tmp_path: Path, serve: Callable) -> None:
    server = serve(real_data_dir)
    rel = MNIST[1]
    server.rules[rel] = send(altered((real_data_dir / rel).read_bytes()))
    data = tmp_path / "data"
    with pytest.raises(DataError, match="checksum mismatch") as info:
        files.ensure_files("mnist", data, mirror=server.url)
    assert "discarded" in str(info.value) and rel in str(info.value)
    assert not (data / rel).exists()
    assert not [p for p in all_files(data) if p.name.endswith(".part")]


def test_content_mismatch_leaves_nothing(real_data_dir: Path, tmp_path: Path, serve: Callable) -> None:
    server = serve(real_data_dir)
    rel = "coil20/COIL20.mat"
    body = (real_data_dir / rel).read_bytes()
    server.rules[rel] = send(altered(body, at=len(body) // 2))  # in the pixel data
    with pytest.raises(DataError, match="discarded"):
        files.ensure_files("coil20", tmp_path / "data", mirror=server.url)
    assert all_files(tmp_path / "data") == []


def test_transfer_cut_halfway_leaves_nothing(real_data_dir: Path, tmp_path: Path, serve: Callable) -> None:
    server = serve(real_data_dir)
    rel = "coil20/COIL20.mat"
    server.rules[rel] = cut_halfway((real_data_dir / rel).read_bytes())
    with pytest.raises(DataError) as info:
        files.ensure_files("coil20", tmp_path / "data", mirror=server.url)
    message = str(info.value)
    assert "missing coil20/COIL20.mat" in message and "cut short" in message
    assert server.hits.count(rel) == dl.TRIES  # bounded retries
    assert all_files(tmp_path / "data") == []


def test_a_cut_transfer_is_retried(real_data_dir: Path, tmp_path: Path, serve: Callable) -> None:
    server = serve(real_data_dir)
    rel = MNIST[3]
    body = (real_data_dir / rel).read_bytes()
    calls: list[int] = []

    def flaky(handler: http.server.BaseHTTPRequestHandler) -> None:
        calls.append(1)
        (cut_halfway(body) if len(calls) == 1 else send(body))(handler)

    server.rules[rel] = flaky
    found = files.ensure_files("mnist", tmp_path / "data", mirror=server.url)
    assert found[rel].read_bytes() == body and len(calls) == 2


def test_direct_download_never_replaces_a_good_file_by_a_bad_one(
    real_data_dir: Path, tmp_path: Path, serve: Callable
) -> None:
    server = serve(real_data_dir)
    rel = MNIST[1]
    good = (real_data_dir / rel).read_bytes()
    server.rules[rel] = send(altered(good))
    dest = tmp_path / "data" / rel
    dest.parent.mkdir(parents=True)
    dest.write_bytes(good)
    sha = files.data_source("mnist").file(rel).sha256
    with pytest.raises(DataError, match="checksum mismatch"):
        dl.download(server.url + rel, dest, sha256=sha)
    assert dest.read_bytes() == good and all_files(tmp_path / "data") == [dest]


def test_existing_good_files_are_used_not_downloaded(real_data_dir: Path, tmp_path: Path, serve: Callable) -> None:
    server = serve(real_data_dir)
    data = tmp_path / "data"
    for rel in MNIST:
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes((real_data_dir / rel).read_bytes())
        server.rules[rel] = send(b"bad bytes")
    found = files.ensure_files("mnist", data, mirror=server.url)
    assert server.hits == []
    assert all(found[rel].read_bytes() == (real_data_dir / rel).read_bytes() for rel in MNIST)


def test_archive_with_a_member_outside_the_folder_is_refused(
    real_data_dir: Path, tmp_path: Path, serve: Callable
) -> None:
    site = tmp_path / "site"
    make_zip(site / MICE_ZIP, {"Data_Cortex_Nuclear.xls": real_data_dir / MICE, "../../escaped.txt": b"owned"})
    server = serve(site)
    with pytest.raises(DataError, match="refusing archive") as info:
        files.ensure_files("mice_protein", tmp_path / "data", mirror=server.url)
    assert "../../escaped.txt" in str(info.value)
    assert all_files(tmp_path / "data") == []
    assert not list(tmp_path.rglob("escaped.txt"))


@pytest.mark.parametrize("name", ["../x", "/etc/x", "a/../../x"])
def test_unsafe_member_names(name: str, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="outside"):
        dl.check_members([name], tmp_path / "target", "a.zip")
    dl.check_members(["a/b", "a/../c", "./d"], tmp_path / "target", "a.zip")  # these stay inside


def test_unreachable_mirror_is_one_clear_line(real_data_dir: Path, tmp_path: Path) -> None:
    url = closed_port_url()
    with pytest.raises(DataError) as info:
        files.ensure_files("mice_protein", tmp_path / "data", mirror=url)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("mice_protein: missing mice_protein/Data_Cortex_Nuclear.xls")
    assert url + MICE in message  # the URL tried
    assert f"put the files under {tmp_path / 'data'}" in message and "IPCAE_DATA_MIRROR" in message
    assert all_files(tmp_path / "data") == []


def test_unreachable_canonical_source_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = closed_port_url() + "isolet.zip"
    replace_source(monkeypatch, "isolet", archive_url=url)
    with pytest.raises(DataError) as info:
        files.ensure_files("isolet", tmp_path / "data")
    message = str(info.value)
    assert "isolet/isolet1+2+3+4.data, isolet/isolet5.data" in message and url in message
    assert f"({dl.TRIES} tries)" in message and "\n" not in message


def test_read_only_data_dir_downloads_into_the_fallback(real_data_dir: Path, tmp_path: Path, serve: Callable) -> None:
    server = serve(real_data_dir)
    data = tmp_path / "readonly"
    data.mkdir()
    data.chmod(0o555)
    try:
        found = files.ensure_files("coil20", data, mirror=server.url)
        fallback = tmp_path / "cache" / "data"
        assert found["coil20/COIL20.mat"] == fallback / "coil20" / "COIL20.mat"
        assert all_files(data) == []
        # Found there next time, also without a mirror.
        assert files.ensure_files("coil20", data, download=False) == found
    finally:
        data.chmod(0o755)


def test_files_split_across_data_dir_and_fallback(real_data_dir: Path, tmp_path: Path, serve: Callable) -> None:
    # The shared copy lacks the HAR matrices: they may come from the fallback folder.
    from test_datasets import write_har_copy

    write_har_copy(tmp_path / "cache" / "data", real_data_dir, n_train=20, n_test=10)
    for rel in ("train/y_train.txt", "test/y_test.txt", "features.txt", "activity_labels.txt"):
        (tmp_path / "cache" / "data" / "har" / "UCI HAR Dataset" / rel).unlink()
    found = files.ensure_files("har", real_data_dir, download=False)
    assert found[har_mod.X_TRAIN].is_relative_to(tmp_path / "cache" / "data")
    assert found[har_mod.FEATURES].is_relative_to(real_data_dir)


def test_lzw_decoder_matches_the_canonical_file(real_data_dir: Path) -> None:
    data = (real_data_dir / "isolet" / "isolet5.data.Z").read_bytes()
    text = dl.lzw_decompress(data)
    assert hashlib.sha256(text).hexdigest() == files.data_source("isolet").file("isolet/isolet5.data").sha256
    with pytest.raises(DataError, match="not a Unix compress"):
        dl.lzw_decompress(b"plain text")
    with pytest.raises(DataError, match="corrupt"):
        dl.lzw_decompress(data[:3] + b"\xff\xff\xff\xff" * 4)


# --- the fetch command -----------------------------------------------------------------------------


def test_fetch_command_downloads_and_reports(
    real_data_dir: Path, tmp_path: Path, serve: Callable, capsys: pytest.CaptureFixture
) -> None:
    server = serve(real_data_dir)
    code = fetch_main(["mnist", "coil20", "--data-dir", str(tmp_path / "data"), "--mirror", server.url])
    lines = capsys.readouterr().out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith("mnist   ok  4 files verified (4 sha256)")
    assert lines[1].startswith("coil20  ok  1 files verified (1 content)")


def test_fetch_command_fails_for_a_missing_dataset(real_data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    code = fetch_main(["--all", "--data-dir", str(real_data_dir), "--mirror", closed_port_url()])
    out = capsys.readouterr().out.splitlines()
    status = {line.split()[0]: line.split()[1] for line in out}
    assert code == 1
    assert status == {"coil20": "ok", "digits": "ok", "fashion_mnist": "ok", "har": "FAILED", "isolet": "ok",
                      "mice_protein": "ok", "mnist": "ok"}  # fmt: skip
    assert "X_train.txt" in next(line for line in out if line.startswith("har"))


def test_fetch_command_reports_a_corrupt_local_file(
    real_data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    data = tmp_path / "data"
    for rel in MNIST:
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes((real_data_dir / rel).read_bytes())
    (data / MNIST[3]).write_bytes(altered((data / MNIST[3]).read_bytes()))
    assert fetch_main(["mnist", "--data-dir", str(data), "--no-download"]) == 1
    out = capsys.readouterr().out
    assert "FAILED" in out and "checksum mismatch" in out and "delete it" in out
