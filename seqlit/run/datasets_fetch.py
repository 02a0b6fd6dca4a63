"""Download, verify and unpack one file with the standard library only, for ``seqlit data get``.

A download goes into ``<target>.part`` and continues from where an earlier attempt stopped (HTTP ``Range``); a server
that ignores ``Range`` is answered by starting that file again from byte zero. The finished file is checked against
its published checksum before anything is put in place: a file is renamed onto its target, an archive is unpacked
into a hidden temporary folder beside the target (with tarfile's ``data`` filter, so no member can land outside it)
and only the expected top folder is renamed into place. Every failure raises :class:`FetchError` with one line that
names the URL or the file, and leaves nothing half-written behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

CHUNK = 1 << 16
TIMEOUT_S = 30.0
ATTEMPTS = 3  # a dropped connection is resumed this many times within one command before giving up


class FetchError(RuntimeError):
    """A download, checksum or unpacking step failed; the message is one line for the user."""


class _RangeRefused(Exception):
    """The server answered 416 to a Range request: the partial file does not fit what it serves."""


def human_size(n: int) -> str:
    """Bytes as a short number with a unit."""
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class _Progress:
    """A byte counter on stderr: a live line on a terminal, one summary line otherwise (logs stay short)."""

    def __init__(self, *, label: str, total: int | None, done: int) -> None:
        self.label, self.total, self.done = label, total, done
        self.live = sys.stderr.isatty()
        self.last = 0.0

    def update(self, *, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if self.live and now - self.last > 0.2:
            self.last = now
            self._draw(end="")

    def _draw(self, *, end: str) -> None:
        line = f"{self.label}: {human_size(self.done)}"
        if self.total:
            line += f" / {human_size(self.total)} ({100 * self.done / self.total:.0f}%)"
        print(f"\r{line}" if self.live else line, end=end, file=sys.stderr, flush=True)

    def close(self) -> None:
        self._draw(end="\n")


def _open(*, url: str, start: int) -> http.client.HTTPResponse:
    """Open ``url`` asking for bytes from ``start`` on; HTTP errors and unreachable hosts become one-line errors."""
    request = urllib.request.Request(url, headers={"User-Agent": "seqlit-data"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)  # noqa: S310 (the URL comes from the registry)
    except urllib.error.HTTPError as err:
        if err.code == 416 and start:
            raise _RangeRefused from None
        raise FetchError(f"download failed: the server answered HTTP {err.code} {err.reason} for {url}") from None
    except ConnectionError:
        raise  # dropped while answering: download() resumes it
    except urllib.error.URLError as err:
        reason = getattr(err.reason, "strerror", None) or err.reason
        raise FetchError(f"download failed: cannot reach {url} ({reason}); offline? see SEQLIT_DATA_MIRROR") from None
    except (TimeoutError, OSError) as err:
        raise FetchError(f"download failed: cannot reach {url} ({err}); offline? see SEQLIT_DATA_MIRROR") from None


def _resume_offset(*, response: http.client.HTTPResponse, start: int) -> int:
    """Where the body of ``response`` starts: ``start`` for a matching 206, 0 when the server sent the whole file."""
    if start and response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        if content_range.startswith(f"bytes {start}-"):
            return start
    return 0


def _attempt(*, url: str, part: Path, size: int | None, label: str) -> None:
    """One request: append to ``part`` (or rewrite it when the server ignores Range); raise OSError if cut short."""
    start = part.stat().st_size if part.exists() else 0
    if size is not None and start >= size:
        return  # already complete (or too long: the checksum decides)
    try:
        response = _open(url=url, start=start)
    except _RangeRefused:
        start, response = 0, _open(url=url, start=0)  # start that file again from byte zero
    with response:
        offset = _resume_offset(response=response, start=start)
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else size
        progress = _Progress(label=label, total=total, done=offset)
        with open(part, "r+b" if offset else "wb") as out:
            out.seek(offset)
            out.truncate()  # a restart from zero must not keep the old tail
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    progress.update(n=len(chunk))
            finally:
                progress.close()
    got = part.stat().st_size
    if total is not None and got < total:
        raise ConnectionError(f"connection closed after {got} of {total} bytes")


def download(*, url: str, part: Path, size: int | None, label: str) -> None:
    """Fill ``part`` with the file at ``url``, continuing what is already there, retrying a dropped connection."""
    part.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            _attempt(url=url, part=part, size=size, label=label)
            return
        except (ConnectionError, http.client.HTTPException, TimeoutError) as err:
            if attempt == ATTEMPTS:
                have = part.stat().st_size if part.exists() else 0
                raise FetchError(
                    f"download of {url} stopped after {have} bytes ({err}); run the same command again to resume"
                ) from None
            print(f"{label}: connection dropped ({err}); resuming", file=sys.stderr)


def file_digest(*, path: Path, algorithm: str) -> str:
    """Hex digest of ``path`` (``sha256`` or ``md5``), read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify(*, part: Path, algorithm: str, expected: str | None, url: str) -> str:
    """Check ``part`` against ``expected``; on a mismatch delete ``part`` and raise. Returns the digest computed
    (the SHA-256 when nothing is expected)."""
    got = file_digest(path=part, algorithm=algorithm if expected is not None else "sha256")
    if expected is not None and got != expected.lower():
        part.unlink(missing_ok=True)  # a corrupt partial file would only be resumed into the same mismatch
        raise FetchError(f"checksum mismatch for {url}: expected {algorithm} {expected}, got {got}; deleted {part}")
    return got


def place_file(*, part: Path, target: Path) -> None:
    """Rename the verified ``part`` onto ``target`` (atomic on one file system)."""
    os.replace(part, target)


def _swap_in(*, new: Path, target: Path, force: bool) -> None:
    """Rename folder ``new`` to ``target``; with ``force`` an existing ``target`` is removed only once ``new`` is in."""
    old = None
    if target.exists() and force:
        old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
        os.replace(target, old)
    os.replace(new, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def place_archive(*, part: Path, target: Path, member: str, force: bool) -> None:
    """Unpack the verified tar archive ``part`` and move its top folder ``member`` to ``target``.

    Members are unpacked with tarfile's ``data`` filter: absolute names, ``..``, links pointing outside and device
    files are refused, so nothing is written outside the temporary folder.
    """
    name = part.name.removesuffix(".part")
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.unpack-", dir=target.parent))
    try:
        try:
            with tarfile.open(part) as archive:
                archive.extractall(scratch, filter="data")
        except tarfile.FilterError as err:
            raise FetchError(f"refused to unpack {name}: {err}") from None
        except (tarfile.TarError, EOFError, OSError) as err:
            raise FetchError(f"cannot unpack {name}: {err}") from None
        top = scratch / member
        if not top.is_dir():
            raise FetchError(f"cannot unpack {name}: it has no top folder {member}/")
        _swap_in(new=top, target=target, force=force)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
