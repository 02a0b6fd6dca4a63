"""Reading labelled documents from disk: label folders (IMDB's layout), CSV/TSV, JSONL, and files to predict.

Every reader returns :class:`RawDocs` (texts, labels as strings, and counts of what was odd on the way in) and
never crashes on content: bytes that are not UTF-8 are decoded with replacement characters and counted, so one
bad file among 50,000 costs a warning line, not the run. Structural mistakes (a missing column, a file that is not
the declared format, nothing to read) raise :class:`~seqlit.errors.InputError` naming what was found instead.
Labels of any kind (strings, integers, booleans) become strings here; :func:`label_order` gives them stable ids.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqlit.errors import InputError, require

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson")
SKIP_FOLDERS = ("unsup",)  # IMDB's unlabelled reviews sit beside pos/ and neg/; they are not a class


@dataclass
class RawDocs:
    """Documents as read: ``texts``, ``labels`` (strings, or None when unknown), where each came from."""

    texts: list[str] = field(default_factory=list)
    labels: list[str | None] = field(default_factory=list)
    not_utf8: int = 0  # documents decoded with replacement characters

    def extend(self, other: RawDocs) -> None:
        self.texts += other.texts
        self.labels += other.labels
        self.not_utf8 += other.not_utf8


def read_text_lenient(path: Path) -> tuple[str, bool]:
    """A file's text, and whether it had to be decoded with replacement characters (not valid UTF-8): one bad review
    among thousands costs a counted warning, not the run (compare :func:`seqlit.data.chars.read_text_strict`)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8"), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), True


def label_folders(folder: Path) -> list[Path]:
    """The sub-folders of ``folder`` that hold ``.txt`` files, one per label, sorted by name (``unsup`` skipped)."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in SKIP_FOLDERS and any(p.glob("*.txt")))


def folder_files(folder: Path) -> list[tuple[Path, str]]:
    """Every ``(file, label)`` of a label-folder layout, in a stable order (label, then file name)."""
    labels = label_folders(folder)
    require(
        bool(labels),
        "data.root",
        str(folder),
        "a folder with one sub-folder of .txt files per label (found no such sub-folder)",
    )
    return [(f, d.name) for d in labels for f in sorted(d.glob("*.txt"))]


def read_files(files: list[tuple[Path, str | None]], desc: str = "reading") -> RawDocs:
    """Read many small text files (with a progress bar on a terminal)."""
    from tqdm import tqdm

    docs = RawDocs()
    for path, label in tqdm(files, desc=desc, unit="file", disable=None, leave=False, mininterval=1.0):
        text, bad = read_text_lenient(path)
        docs.texts.append(text)
        docs.labels.append(label)
        docs.not_utf8 += bad
    return docs


def _table_rows(path: Path) -> tuple[list[dict], list[str], int]:
    """Rows of a CSV/TSV/JSONL file as dicts, the columns found, and how many rows were not valid UTF-8."""
    text, bad = read_text_lenient(path)
    if path.suffix in (".jsonl", ".ndjson"):
        rows, columns = [], {}
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                msg = f"data file {str(path)!r} line {n} is not JSON ({err.msg}): give one object per line"
                raise InputError(msg) from None
            if not isinstance(row, dict):
                raise InputError(f"data file {str(path)!r} line {n} is {type(row).__name__}, not a JSON object")
            rows.append(row)
            columns.update(dict.fromkeys(row))
        return rows, list(columns), int(bad)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents exceed csv's default 128 kB field limit
    reader = csv.DictReader(text.splitlines(), delimiter="\t" if path.suffix == ".tsv" else ",")
    rows = list(reader)
    return rows, list(reader.fieldnames or []), int(bad)


def read_table(path: Path, text_column: str, label_column: str | None) -> RawDocs:
    """Documents from a CSV/TSV/JSONL file; ``label_column=None`` (prediction) reads texts only."""
    rows, columns, bad = _table_rows(path)
    require(bool(rows), "data file", str(path), "a file with at least one row of data (it has none)")
    for name, col in (("data.text_column", text_column), ("data.label_column", label_column)):
        if col is not None and col not in columns:
            raise InputError(f"{name}={col!r} is not a column of {str(path)!r}: the columns found are {columns}")
    docs = RawDocs(not_utf8=bad)
    for n, row in enumerate(rows, start=1):
        text = row.get(text_column)
        docs.texts.append("" if text is None else str(text))
        if label_column is None:
            docs.labels.append(None)
            continue
        label = row.get(label_column)
        if label is None or (isinstance(label, str) and not label.strip()):
            raise InputError(f"data file {str(path)!r} row {n} has no value in label column {label_column!r}")
        docs.labels.append(_label_str(label))
    return docs


def _label_str(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1.0 from a JSON file is the same class as 1
    return str(value).strip()


def label_order(labels: list[str]) -> list[str]:
    """Distinct labels in a stable order: numerically if every label is an integer, else alphabetically."""
    distinct = set(labels)
    try:
        return sorted(distinct, key=int)
    except ValueError:
        return sorted(distinct)


def read_predict(path: Path) -> tuple[RawDocs, list[int]]:
    """Documents to predict and their ids: lines of a ``.txt`` file (id = line number from 0, blank lines skipped),
    ``.txt`` files of a folder (id = position in name order), or rows of a CSV/TSV/JSONL file (its ``text`` column)."""
    require(path.exists(), "data.predict_path", str(path), "an existing .txt file (one document per line) or folder")
    if path.is_dir():
        files = sorted(path.rglob("*.txt"))
        require(bool(files), "data.predict_path", str(path), "a folder holding at least one .txt file (it has none)")
        docs = read_files([(f, None) for f in files], desc="reading")
        return docs, list(range(len(files)))
    if path.suffix in TABLE_SUFFIXES:
        raise InputError(f"data.predict_path={str(path)!r}: use read_table for {path.suffix} files")
    text, bad = read_text_lenient(path)
    # one document per line: a binary or UTF-16 file would become thousands of garbage documents, so refuse it
    require(
        not bad and "\x00" not in text,
        "data.predict_path",
        str(path),
        "a UTF-8 text file (this one is binary or in another encoding)",
    )
    docs, ids = RawDocs(), []
    for n, line in enumerate(text.splitlines()):
        if line.strip():
            docs.texts.append(line)
            docs.labels.append(None)
            ids.append(n)
    require(bool(ids), "data.predict_path", str(path), "a file with at least one non-blank line (it is empty)")
    return docs, ids


def stratified_split(labels: np.ndarray, fractions: list[float], seed: int) -> list[np.ndarray]:
    """Carve index sets with the given fractions from every class alike (seeded); the rest comes first.

    Returns ``[rest, part_0, part_1, ...]``, each sorted. Each class gives ``round(fraction * class size)`` documents
    to each part, so small classes stay represented in validation and test.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for k, frac in enumerate(fractions, start=1):
            take = int(round(frac * len(idx)))
            parts[k].append(idx[start : start + take])
            start += take
        parts[0].append(idx[start:])
    return [np.sort(np.concatenate(p)) if p else np.zeros(0, dtype=np.int64) for p in parts]


def fingerprint(paths: list[Path], settings: dict) -> str:
    """A key for the cache: every input file's path, size and modification time, and the settings that shape ids."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]
