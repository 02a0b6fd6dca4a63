"""The time column of a series, read with pandas: parsed, checked to increase strictly, and extended past the end.

Times are numbers, or dates in a given strptime format (``data.time_format``) or in one pandas reads: ISO 8601 (with
or without a UTC offset), ``1939 Jan``, ``1998 Q1``, ``31.01.2024`` and the common ones below. The step between rows
is pandas' inferred frequency (``pd.infer_freq``: month-end, quarter-end, business day, 30 minutes …), else the most
common difference; future steps are pandas offsets of that frequency, so month-end data stays on month ends, business
days skip weekends and stamps with a UTC offset step in real time across a daylight-saving change. Labels inside the
file are its own text; future labels are written in the file's style.
"""

from __future__ import annotations

import re
import warnings
from datetime import datetime

import numpy as np
import pandas as pd

from seqlit.errors import InputError

# strptime styles tried on the first cell to write future labels like the file's own (ISO parsing reads them all)
TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y/%m/%d",
    "%d.%m.%Y", "%m/%d/%Y", "%Y-%m", "%Y%m%d", "%Y %b", "%Y %B", "%b %Y", "%Y-%b",
)  # fmt: skip
ISO = TIME_FORMATS[:5] + ("%Y-%m",)  # styles pandas' ISO 8601 parser reads (with any UTC offset)
QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*Q([1-4])\s*$", re.IGNORECASE)  # 1998 Q1, 1998Q1, 1998-Q1


def parse_times(cells: pd.Series, column: str, fmt: str | None) -> tuple[np.ndarray, str | None]:
    """Times of ``cells`` (strings) as float numbers or UTC-free ``datetime64[ns]`` (instants in UTC when the cells
    carry an offset), and the style future labels are written in: a strptime format, ``quarter``, ``iso`` or None
    (numbers). An unparsable cell is an error naming the first bad value and its data row."""
    cells = cells.astype(str).str.strip().reset_index(drop=True)
    if fmt is None:
        numbers = pd.to_numeric(cells, errors="coerce")
        if numbers.notna().all() and np.isfinite(numbers.to_numpy(float)).all():
            return numbers.to_numpy(float), None
    if fmt is None and len(cells) and QUARTER.match(cells[0]):
        parts = cells.str.extract(QUARTER)  # year, quarter; NaN where a cell is no quarter
        month = pd.to_numeric(parts[1], errors="coerce") * 3 - 2  # a quarter is stamped at its first month
        stamps = pd.to_datetime(parts[0] + "-" + month.astype("Int64").astype(str), format="%Y-%m", errors="coerce")
        return _checked(stamps, cells, column, fmt), "quarter"
    style = fmt or next((f for f in TIME_FORMATS if _parses(cells[0], f)), None) if len(cells) else fmt
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas warns about mixed offsets; utc=True is the answer to it
        if fmt is not None or (style is not None and style not in ISO):
            stamps = pd.to_datetime(cells, format=style, errors="coerce", utc=fmt is not None and "%z" in fmt)
        else:  # ISO 8601, with or without an offset; offsets may differ across a DST change
            stamps = pd.to_datetime(cells, format="ISO8601", errors="coerce", utc=True)
            if not _has_offset(cells[0]):
                stamps = stamps.dt.tz_localize(None)
    return _checked(stamps, cells, column, fmt), style or "iso"


def _checked(stamps: pd.Series, cells: pd.Series, column: str, fmt: str | None) -> np.ndarray:
    """The stamps as naive ``datetime64[ns]`` (UTC for aware ones), or an error naming the first cell that failed."""
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if len(bad):
        raise InputError(
            f"data.time_column={column!r} has {cells[bad[0]]!r} in data row {bad[0] + 1}, which is not a time "
            f"{'in data.time_format=' + repr(fmt) if fmt else 'in a known format'} ({len(bad)} unreadable in "
            "all): give data.time_format (a strptime format such as '%Y-%m-%d'), or numbers"
        )
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.to_numpy("datetime64[ns]")


def check_increasing(
    times: np.ndarray, cells: pd.Series, column: str, rows: np.ndarray | None = None, where: str = ""
) -> None:
    """Strictly increasing times, else an error naming both rows (``rows``: their data-row numbers, 1-based) and,
    in a file of many series, ``where`` (which series)."""
    rows = np.arange(1, len(times) + 1) if rows is None else rows
    bad = np.flatnonzero(times[1:] <= times[:-1])
    if len(bad):
        i = bad[0] + 1
        what = "a duplicate of" if times[i] == times[i - 1] else "earlier than"
        raise InputError(
            f"data.time_column={column!r} must increase strictly{where}: {cells.iloc[i]!r} in data row {rows[i]} is "
            f"{what} {cells.iloc[i - 1]!r} in data row {rows[i - 1]}; sort the file and drop duplicate rows"
        )


def infer_step(times: np.ndarray) -> pd.DateOffset | pd.Timedelta | float:
    """The step between rows: pandas' inferred frequency, else the most common difference (1 for one row)."""
    if len(times) < 2:
        return 1.0 if times.dtype.kind == "f" else pd.Timedelta(days=1)
    if times.dtype.kind == "f":
        diffs, counts = np.unique(np.diff(times), return_counts=True)
        return float(diffs[counts.argmax()])
    if len(times) >= 3:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the future-behaviour notice of infer_freq's return type
            freq = pd.infer_freq(pd.DatetimeIndex(times))
        if freq is not None:
            return pd.tseries.frequencies.to_offset(freq)
    stamps = pd.DatetimeIndex(times)
    months = np.diff(stamps.year * 12 + stamps.month)
    if len(set(zip(stamps.day, stamps.time, strict=True))) == 1 or stamps.is_month_end.all():
        # calendar months (irregular, or too few rows to infer): a 30-day step would drift off the day of the month
        m = int(np.bincount(months).argmax())
        return pd.offsets.MonthEnd(m) if stamps.is_month_end.all() else pd.DateOffset(months=m)
    diffs, counts = np.unique(np.diff(times), return_counts=True)
    return pd.Timedelta(diffs[counts.argmax()])


class TimeAxis:
    """The time column of one series: ordering checks, labels of its rows, and labels of steps past its end."""

    def __init__(self, cells: list[str] | pd.Series, column: str, fmt: str | None, *, times: np.ndarray | None = None,
                 style: str | None = None, rows: np.ndarray | None = None, where: str = "") -> None:  # fmt: skip
        self.cells = pd.Series(list(cells) if not isinstance(cells, pd.Series) else cells.to_numpy(), dtype=object)
        self.column = column
        if times is None:
            times, style = parse_times(self.cells, column, fmt)
        check_increasing(times, self.cells, column, rows, where)
        self.times, self.style = times, style
        self.numeric = style is None
        self.step = infer_step(times)
        last = self.cells.iloc[-1] if len(self.cells) else ""
        self.offset = pd.Timestamp(last).tzinfo if style == "iso" and _has_offset(str(last)) else None

    def future_times(self, count: int) -> pd.DatetimeIndex:
        """The ``count`` stamps after the last row (naive; UTC for stamps with an offset); dates only."""
        last = pd.Timestamp(self.times[-1])
        if isinstance(self.step, pd.Timedelta):
            return pd.DatetimeIndex([last + self.step * k for k in range(1, count + 1)])
        return pd.date_range(last, periods=count + 1, freq=self.step)[1:]

    def future(self, count: int) -> list[str]:
        """Labels of the ``count`` steps after the last row."""
        if self.numeric:
            values = self.times[-1] + self.step * np.arange(1, count + 1)
            whole = all(float(c).is_integer() for c in self.cells)
            return [str(int(v)) if whole else f"{v:g}" for v in values]
        return [self._format(t) for t in self.future_times(count)]

    def _format(self, t: pd.Timestamp) -> str:
        if self.style == "quarter":
            return f"{t.year} Q{t.quarter}"
        if self.offset is not None:  # an instant in UTC: written at the last row's offset, as the file writes it
            return t.tz_localize("UTC").tz_convert(self.offset).isoformat()
        if self.style == "iso":
            return t.isoformat()
        return t.strftime(self.style)

    def label(self, i: int) -> str:
        """Label of step ``i``: the file's own text inside the file, the inferred step extrapolated past its end."""
        if i < len(self.cells):
            return str(self.cells.iloc[i])
        return self.future(i - len(self.cells) + 1)[-1]


def _has_offset(cell: str) -> bool:
    return bool(re.search(r"(Z|[+-]\d{2}:?\d{2})$", cell.strip())) and ("T" in cell or " " in cell.strip())


def _parses(cell: str, fmt: str) -> bool:
    try:
        datetime.strptime(cell, fmt)
    except ValueError:
        return False
    return True
