"""The time column of a CSV series: parsed, checked to increase strictly, and extended past the file's end.

Times are numbers or dates in a strptime format (given, or the first of the common ones below that reads every value).
Predictions are labelled with them: the file's own text inside the file and, for the future forecast, the usual step
between rows extrapolated past the last one (a whole number of months when every row falls on the same day of the
month, so monthly data stays on the 1st rather than drifting by 30-day steps).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from seqlit.errors import InputError

# tried in order when no time_format is given; the first that reads every value wins and formats future steps
TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d", "%Y/%m/%d",
    "%d.%m.%Y", "%m/%d/%Y", "%Y-%m", "%Y%m%d",
)  # fmt: skip


class TimeAxis:
    """The parsed time column: ordering checks, labels of the file's rows, and labels of steps past its end."""

    def __init__(self, cells: list[str], column: str, fmt: str | None) -> None:
        self.cells, self.column = cells, column
        self.numeric = fmt is None and all(_is_number(c) for c in cells)
        if self.numeric:
            self.fmt = None
            times: list[Any] = [float(c) for c in cells]
        else:
            # the first format that reads every value; failing that, the one the first value is in (to name the culprit)
            self.fmt = fmt or next((f for f in TIME_FORMATS if _parses(cells, f)), None)
            self.fmt = self.fmt or next((f for f in TIME_FORMATS if _parses(cells[:1], f)), None)
            bad = next((i for i, c in enumerate(cells) if self.fmt is None or not _parses([c], self.fmt)), None)
            if bad is not None:
                raise InputError(
                    f"data.time_column={column!r} has {cells[bad]!r} in data row {bad + 1}, which is not a time "
                    f"{'in data.time_format=' + repr(fmt) if fmt else 'in a known format'}: give data.time_format "
                    "(a strptime format such as '%Y-%m-%d'), or numbers"
                )
            times = [datetime.strptime(c, self.fmt) for c in cells]
        for i in range(1, len(times)):
            if times[i] <= times[i - 1]:
                what = "a duplicate of" if times[i] == times[i - 1] else "earlier than"
                raise InputError(
                    f"data.time_column={column!r} must increase strictly: {cells[i]!r} in data row {i + 1} is {what} "
                    f"{cells[i - 1]!r} in data row {i}; sort the file and drop duplicate rows"
                )
        self.times = times
        self.step = self._step()

    def _step(self) -> Any:
        """The usual step between rows: a number, a whole number of months (when every row falls on the same day of
        the month at the same clock time), or a timedelta."""
        t = self.times
        if len(t) < 2:
            return 1.0 if self.numeric else timedelta(days=1)
        if not self.numeric and len({(x.day, x.time()) for x in t}) == 1:
            months = Counter((b.year - a.year) * 12 + b.month - a.month for a, b in zip(t[:-1], t[1:], strict=True))
            return ("months", months.most_common(1)[0][0])
        return Counter(b - a for a, b in zip(t[:-1], t[1:], strict=True)).most_common(1)[0][0]

    def label(self, i: int) -> str:
        """Label of step ``i``: the file's own text inside the file, the usual step extrapolated past its end."""
        if i < len(self.cells):
            return self.cells[i]
        ahead = i - len(self.cells) + 1
        last = self.times[-1]
        if self.numeric:
            value = last + self.step * ahead
            return str(int(value)) if all(float(c).is_integer() for c in self.cells) else f"{value:g}"
        if isinstance(self.step, tuple):
            m = last.year * 12 + last.month - 1 + self.step[1] * ahead
            return last.replace(year=m // 12, month=m % 12 + 1).strftime(self.fmt)
        return (last + self.step * ahead).strftime(self.fmt)


def _is_number(cell: str) -> bool:
    try:
        return np.isfinite(float(cell))
    except ValueError:
        return False


def _parses(cells: list[str], fmt: str) -> bool:
    try:
        for c in cells:
            datetime.strptime(c, fmt)
    except ValueError:
        return False
    return True
