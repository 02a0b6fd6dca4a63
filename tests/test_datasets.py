"""``seqlit data``: real downloads from a local HTTP server, checksums, resume, refusals and safe unpacking."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import socket
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from seqlit.run import datasets
from seqlit.run.datasets import DataSet

TEXT = b"First Citizen:\nBefore we proceed any further, hear me speak.\n" * 200


def make_tar(members: dict[str, bytes]) -> bytes:
    """A .tar.gz holding ``members`` (name -> content), in memory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


IMDB_TAR = make_tar(
    {
        f"aclImdb/{split}/{label}/{i}_7.txt": f"review {split} {label} {i}".encode()
        for split in ("train", "test")
        for label in ("pos", "neg")
        for i in range(3)
    }
    | {"aclImdb/README": b"readme"}
)


class Server:
    """A threaded HTTP server on 127.0.0.1 serving ``files``; records each request's path and Range header."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files, self.requests, self.status = files, [], None
        self.cut_first_after: int | None = None  # the first GET sends only this many bytes, then hangs up
        self.cut_always_after: int | None = None  # every GET sends only this many more bytes, then hangs up
        self.ignore_range = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path.lstrip("/"))
                if server.status or body is None:
                    self.send_error(server.status or 404)
                    return
                start = 0
                rng = self.headers.get("Range")
                if rng and not server.ignore_range:
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if server.cut_first_after is not None and len(server.requests) == 1:
                    self.wfile.write(body[: server.cut_first_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if server.cut_always_after is not None:
                    self.wfile.write(body[start : start + server.cut_always_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server({"input.txt": TEXT, "aclImdb_v1.tar.gz": IMDB_TAR})
    yield srv
    srv.close()


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch, server: Server) -> dict[str, DataSet]:
    """Test entries whose URLs point at a host that does not exist: every test reaches the server via the mirror."""
    origin = "http://origin.invalid/files"
    entries = {
        "text": DataSet(
            name="text",
            about="a text file",
            url=f"{origin}/input.txt",
            checksum=hashlib.sha256(TEXT).hexdigest(),
            algorithm="sha256",
            size=len(TEXT),
            target="text/input.txt",
        ),
        "reviews": DataSet(
            name="reviews",
            about="an IMDB-like archive",
            url=f"{origin}/aclImdb_v1.tar.gz",
            checksum=hashlib.md5(IMDB_TAR).hexdigest(),
            algorithm="md5",
            size=len(IMDB_TAR),
            target="reviews/aclImdb",
            archive_member="aclImdb",
            expect=("train/pos", "test/neg"),
        ),
    }
    monkeypatch.setattr(datasets, "REGISTRY", entries)
    monkeypatch.setenv(datasets.MIRROR_ENV, server.url)
    return entries


def run(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        datasets.main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def error_line(err: str) -> str:
    """The one error line (progress lines may precede it on stderr)."""
    errors = [line for line in err.splitlines() if line.startswith("seqlit data: error:")]
    assert len(errors) == 1 and err.rstrip().endswith(errors[0]), err
    return errors[0]


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_text_download_via_mirror(registry, server, tmp_path, capsys):
    code, out, _ = run(["get", "text", "--root", str(tmp_path)], capsys)
    assert code == 0
    assert (tmp_path / "text/input.txt").read_bytes() == TEXT
    assert files_under(tmp_path) == {"text", "text/input.txt"}  # no .part left
    assert server.requests == [("/input.txt", None)]
    assert str(tmp_path / "text/input.txt") in out


def test_archive_download_and_unpack(registry, server, tmp_path, capsys):
    code, _, _ = run(["get", "reviews", "--root", str(tmp_path)], capsys)
    assert code == 0
    target = tmp_path / "reviews/aclImdb"
    assert sorted(p.name for p in (target / "train/pos").iterdir()) == ["0_7.txt", "1_7.txt", "2_7.txt"]
    assert (target / "test/neg/2_7.txt").read_text() == "review test neg 2"
    assert sorted(p.name for p in (tmp_path / "reviews").iterdir()) == ["aclImdb"]  # no archive, no scratch
    code, out, _ = run(["list", "--root", str(tmp_path)], capsys)
    lines = {line.split()[0]: line for line in out.splitlines()[1:]}
    assert code == 0 and lines["reviews"].split()[3] == "yes" and lines["text"].split()[3] == "no"


def test_checksum_mismatch_deletes_only_its_part(registry, server, tmp_path, capsys):
    server.files["input.txt"] = TEXT[:-1] + b"?"
    (tmp_path / "text").mkdir()
    (tmp_path / "text/notes.md").write_text("mine")
    code, _, err = run(["get", "text", "--root", str(tmp_path)], capsys)
    assert code == 1
    err = error_line(err)
    assert "checksum mismatch" in err and registry["text"].checksum in err
    assert hashlib.sha256(server.files["input.txt"]).hexdigest() in err
    assert files_under(tmp_path) == {"text", "text/notes.md"}


def test_interrupted_download_resumes_with_range(registry, server, tmp_path, capsys):
    server.cut_first_after = 1000
    code, _, err = run(["get", "text", "--root", str(tmp_path)], capsys)
    assert code == 0, err
    assert [r[1] for r in server.requests] == [None, "bytes=1000-"]
    assert (tmp_path / "text/input.txt").read_bytes() == TEXT


def test_leftover_part_is_continued_by_a_new_command(registry, server, tmp_path, capsys):
    (tmp_path / "text").mkdir()
    (tmp_path / "text/input.txt.part").write_bytes(TEXT[:500])
    code, _, _ = run(["get", "text", "--root", str(tmp_path)], capsys)
    assert code == 0
    assert server.requests == [("/input.txt", "bytes=500-")]
    assert (tmp_path / "text/input.txt").read_bytes() == TEXT


def test_server_ignoring_range_restarts_cleanly(registry, server, tmp_path, capsys):
    server.ignore_range = True
    (tmp_path / "text").mkdir()
    (tmp_path / "text/input.txt.part").write_bytes(b"X" * 700)  # would corrupt the file if appended to
    code, _, err = run(["get", "text", "--root", str(tmp_path)], capsys)
    assert code == 0, err
    assert (tmp_path / "text/input.txt").read_bytes() == TEXT


@pytest.mark.parametrize("status", [404, 500])
def test_http_error_is_one_line_with_code_and_url(registry, server, tmp_path, capsys, status):
    server.status = status
    code, _, err = run(["get", "text", "--root", str(tmp_path)], capsys)
    assert code == 1
    assert error_line(err) and f"HTTP {status}" in err and f"{server.url}/input.txt" in err
    assert files_under(tmp_path) == set()  # not even the folder it made


def test_closed_port_is_one_line(registry, tmp_path, capsys, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(datasets.MIRROR_ENV, f"http://127.0.0.1:{port}")
    code, _, err = run(["get", "text", "--root", str(tmp_path)], capsys)
    assert code == 1
    assert error_line(err) and f"http://127.0.0.1:{port}/input.txt" in err and "cannot reach" in err
    assert files_under(tmp_path) == set()


def test_mirror_flag_and_a_connection_that_keeps_dropping(registry, server, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(datasets.MIRROR_ENV)
    server.cut_always_after = 100
    code, _, err = run(["get", "text", "--root", str(tmp_path), "--mirror", server.url + "/"], capsys)
    assert code == 1 and "run the same command again to resume" in error_line(err)
    assert [r[1] for r in server.requests] == [None, "bytes=100-", "bytes=200-"]
    assert (tmp_path / "text/input.txt.part").read_bytes() == TEXT[:300]  # kept, to be continued
    server.cut_always_after = None
    code, _, _ = run(["get", "text", "--root", str(tmp_path), "--mirror", server.url], capsys)
    assert code == 0 and server.requests[-1] == ("/input.txt", "bytes=300-")
    assert files_under(tmp_path) == {"text", "text/input.txt"}


def test_existing_data_left_alone_without_force(registry, server, tmp_path, capsys):
    (tmp_path / "text").mkdir()
    (tmp_path / "text/input.txt").write_bytes(b"my own edited copy")
    code, out, _ = run(["get", "text", "--root", str(tmp_path)], capsys)
    assert code == 0 and "already at" in out and server.requests == []
    assert (tmp_path / "text/input.txt").read_bytes() == b"my own edited copy"
    code, _, _ = run(["get", "text", "--root", str(tmp_path), "--force"], capsys)
    assert code == 0 and (tmp_path / "text/input.txt").read_bytes() == TEXT


def test_incomplete_folder_is_not_overwritten(registry, server, tmp_path, capsys):
    (tmp_path / "reviews/aclImdb").mkdir(parents=True)
    (tmp_path / "reviews/aclImdb/mine.txt").write_text("mine")
    code, _, err = run(["get", "reviews", "--root", str(tmp_path)], capsys)
    assert code == 2 and "--force" in err and server.requests == []
    assert files_under(tmp_path) == {"reviews", "reviews/aclImdb", "reviews/aclImdb/mine.txt"}


def test_archive_escaping_its_folder_is_refused(registry, server, tmp_path, capsys, monkeypatch):
    evil = make_tar({"aclImdb/train/pos/0_7.txt": b"ok", "aclImdb/../../escaped.txt": b"gotcha"})
    server.files["aclImdb_v1.tar.gz"] = evil
    entry = registry["reviews"]
    monkeypatch.setitem(
        datasets.REGISTRY,
        "reviews",
        dataclasses.replace(entry, checksum=hashlib.md5(evil).hexdigest(), size=len(evil)),
    )
    root = tmp_path / "root"
    code, _, err = run(["get", "reviews", "--root", str(root)], capsys)
    assert code == 1 and error_line(err) and "refused" in err
    assert not (tmp_path / "escaped.txt").exists()
    assert not root.exists()  # no target, no scratch folder, no archive, not even the folders it made


def test_unknown_name_lists_the_choices(registry, tmp_path, capsys):
    code, _, err = run(["get", "nope", "--root", str(tmp_path)], capsys)
    assert code == 2 and error_line(err) and "text, reviews" in err
    assert not tmp_path.joinpath("nope").exists()


def test_real_registry_is_complete():
    for entry in datasets.REGISTRY.values():
        assert entry.manual or (entry.url.startswith("https://") and entry.checksum and entry.size)
        assert entry.algorithm in ("sha256", "md5")
    assert datasets.REGISTRY["imdb"].target == "imdb/aclImdb"
    assert datasets.REGISTRY["shakespeare"].target == "shakespeare/input.txt"
    assert datasets.REGISTRY["sunspots"].target == "sunspots/monthly-sunspots.csv"


def test_unknown_checksum_prints_the_computed_sha256(registry, server, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(datasets.REGISTRY, "text", dataclasses.replace(registry["text"], checksum=None, size=None))
    code, _, err = run(["get", "all", "--root", str(tmp_path)], capsys)
    assert code == 0 and f"SHA-256 {hashlib.sha256(TEXT).hexdigest()}" in err
    assert (tmp_path / "text/input.txt").read_bytes() == TEXT and (tmp_path / "reviews/aclImdb/train/pos").is_dir()
