"""``seqlit data list`` and ``seqlit data get NAME``: fetch the benchmark data sets the documented commands use.

The registry below names each data set's public source, its published checksum and the path under ``--root``
(default ``data``) where the configs and docs expect it, e.g. ``data/shakespeare/input.txt``. ``get`` downloads
with a byte progress line, resumes an interrupted download, verifies the checksum, unpacks archives atomically and
leaves a complete data set alone unless ``--force``. ``--mirror URL`` or the ``SEQLIT_DATA_MIRROR`` environment
variable replaces the origin of every URL (the file name is kept), for mirrors, caches and tests. Failures print one
line and exit non-zero: 2 for a bad name or option, 1 for a network, checksum or unpacking failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from seqlit.errors import InputError, require
from seqlit.run import datasets_fetch
from seqlit.run.datasets_fetch import FetchError

MIRROR_ENV = "SEQLIT_DATA_MIRROR"


@dataclass(frozen=True)
class DataSet:
    """One downloadable data set: where it comes from, how to check it and where it goes under the data root."""

    name: str
    about: str
    url: str
    checksum: str | None  # published digest of the downloaded file; None: unknown, the SHA-256 is printed instead
    algorithm: str  # "sha256" or "md5": whichever the source publishes
    size: int | None  # bytes of the downloaded file
    target: str  # path under the data root that the documented commands use
    archive_member: str | None = None  # for a .tar.gz: the top folder that becomes ``target``
    expect: tuple[str, ...] = ()  # paths inside a folder target that a complete copy has
    manual: str | None = None  # set when no direct download exists: how to obtain it instead


REGISTRY: dict[str, DataSet] = {
    d.name: d
    for d in (
        DataSet(
            name="imdb",
            about="Large Movie Review Dataset v1.0 (Maas et al., 2011), 25k/25k labelled reviews",
            url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
            checksum="c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
            algorithm="sha256",
            size=84125825,
            target="imdb/aclImdb",
            archive_member="aclImdb",
            expect=("train/pos", "train/neg", "test/pos", "test/neg"),
        ),
        DataSet(
            name="shakespeare",
            about="tiny Shakespeare from karpathy/char-rnn, 1,115,394 characters",
            url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
            checksum="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            algorithm="sha256",
            size=1115394,
            target="shakespeare/input.txt",
        ),
        DataSet(
            name="sunspots",
            about="monthly mean sunspot numbers 1749-1983 (2,820 rows: Month,Sunspots), jbrownlee/Datasets",
            url="https://raw.githubusercontent.com/jbrownlee/Datasets/master/monthly-sunspots.csv",
            checksum="c4ec8cc57d9f6fb6ecdb3e1f37f25b6f4badd5124c55931052b0cd2fc3bc71f3",
            algorithm="sha256",
            size=45039,
            target="sunspots/monthly-sunspots.csv",
        ),
        DataSet(
            name="us_employment",
            about="US employment by industry, monthly 1939-2019 (fpp3 data set us_employment, BLS)",
            url="https://github.com/robjhyndman/fpp3",
            checksum=None,
            algorithm="sha256",
            size=None,
            target="us_employment/us_employment.csv",
            manual="published only inside the R package fpp3; export fpp3::us_employment to CSV "
            "(columns Month,Series_ID,Title,Employed)",
        ),
        DataSet(
            name="elecdemand",
            about="half-hourly electricity demand, Victoria 2014 (fpp2 data set elecdemand, AEMO and BOM)",
            url="https://github.com/robjhyndman/fpp2-package",
            checksum=None,
            algorithm="sha256",
            size=None,
            target="elecdemand/elecdemand.csv",
            manual="published only inside the R package fpp2; export fpp2::elecdemand to CSV "
            "(columns Time,Demand,WorkDay,Temperature)",
        ),
    )
}


def source_url(*, entry: DataSet, mirror: str | None) -> str:
    """The URL to fetch: the registry's, or ``mirror`` followed by the registry URL's file name."""
    if not mirror or entry.manual:
        return entry.url
    return f"{mirror.rstrip('/')}/{entry.url.rsplit('/', 1)[-1]}"


def is_present(*, entry: DataSet, root: Path) -> bool:
    """Whether a complete copy is already at its target (a folder must hold every ``expect`` path)."""
    target = root / entry.target
    if entry.archive_member is None:
        return target.is_file()
    return target.is_dir() and all((target / p).exists() for p in entry.expect)


def _size_text(size: int | None) -> str:
    return "?" if size is None else datasets_fetch.human_size(size)


def _make_dirs(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return the ones this call created, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def list_datasets(*, root: Path, mirror: str | None) -> None:
    """Print one line per data set: name, size, source, where it goes and whether it is there."""
    print(f"{'name':<14} {'size':>9}  {'present':<7}  {'path':<38} source")
    for entry in REGISTRY.values():
        state = "manual" if entry.manual else ("yes" if is_present(entry=entry, root=root) else "no")
        path = str(root / entry.target)
        source = source_url(entry=entry, mirror=mirror)
        print(f"{entry.name:<14} {_size_text(entry.size):>9}  {state:<7}  {path:<38} {source}")


def get(*, name: str, root: Path, force: bool, mirror: str | None) -> Path:
    """Fetch data set ``name`` into ``root``; return where it is. Raises InputError or FetchError."""
    require(name in REGISTRY, "NAME", name, f"one of {', '.join(REGISTRY)}")
    entry = REGISTRY[name]
    target = root / entry.target
    if entry.manual:
        raise InputError(f"{name} cannot be downloaded directly: {entry.manual}; save it as {target}")
    if is_present(entry=entry, root=root) and not force:
        print(f"{name} is already at {target} (use --force to download it again)")
        return target
    # A folder we did not make and that is not complete is someone's work: never overwrite it without --force.
    if target.exists() and not force:
        raise InputError(f"{target} exists but is not a complete copy of {name}; move it away or pass --force")
    url = source_url(entry=entry, mirror=mirror)
    created = _make_dirs(target.parent)
    try:
        _fetch(entry=entry, url=url, target=target, force=force)
    except BaseException:
        for folder in reversed(created):  # remove the folders this run made, if nothing (e.g. a .part) is in them
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    print(f"{name} is at {target}")
    return target


def _fetch(*, entry: DataSet, url: str, target: Path, force: bool) -> None:
    """Download, verify and put in place one data set whose target folder exists."""
    name = entry.name
    part = target.parent / f"{url.rsplit('/', 1)[-1]}.part"
    print(f"downloading {name} from {url}", file=sys.stderr)
    datasets_fetch.download(url=url, part=part, size=entry.size, label=name)
    digest = datasets_fetch.verify(part=part, algorithm=entry.algorithm, expected=entry.checksum, url=url)
    if entry.checksum is None:
        print(f"note: {name} has no published checksum; the file downloaded has SHA-256 {digest}", file=sys.stderr)
    if entry.archive_member is None:
        datasets_fetch.place_file(part=part, target=target)
    else:
        try:
            datasets_fetch.place_archive(part=part, target=target, member=entry.archive_member, force=force)
        finally:
            part.unlink()  # unpacked, or refused: either way this run's download is not needed any more


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqlit data", description="List and download the benchmark data sets.")
    parser.add_argument("--root", default="data", help="folder the data sets go under (default: data)")
    parser.add_argument("--mirror", default=None, help=f"base URL replacing each source's origin (or ${MIRROR_ENV})")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="show every data set, its source, its path and whether it is present")
    get_cmd = sub.add_parser("get", help="download one data set (or 'all')")
    get_cmd.add_argument("name", help=f"one of: {', '.join(REGISTRY)}, all")
    get_cmd.add_argument("--force", action="store_true", help="download again even if a complete copy is present")
    for cmd in sub.choices.values():  # accept --root/--mirror after the subcommand too
        cmd.add_argument("--root", default=argparse.SUPPRESS, help="folder the data sets go under (default: data)")
        cmd.add_argument("--mirror", default=argparse.SUPPRESS, help=f"base URL replacing each origin (${MIRROR_ENV})")
    return parser


def _fail(message: str, code: int) -> NoReturn:
    print(f"seqlit data: error: {message}", file=sys.stderr)
    raise SystemExit(code)


def main(argv: list[str]) -> None:
    """Run ``seqlit data ARGV``; always ends with SystemExit (0 on success)."""
    args = _parser().parse_args(argv)  # argparse itself exits 2 with a usage line on unknown options
    root, mirror = Path(args.root), args.mirror or os.environ.get(MIRROR_ENV) or None
    try:
        if args.command == "list":
            list_datasets(root=root, mirror=mirror)
        else:
            names = [n for n, d in REGISTRY.items() if not d.manual] if args.name == "all" else [args.name]
            for name in names:
                get(name=name, root=root, force=args.force, mirror=mirror)
    except InputError as err:
        _fail(str(err), 2)
    except FetchError as err:
        _fail(str(err), 1)
    except OSError as err:  # a full disk or a folder that cannot be written
        _fail(f"cannot write under {root}: {err}", 1)
    except KeyboardInterrupt:
        _fail("interrupted; run the same command again to resume the download", 130)
    raise SystemExit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
