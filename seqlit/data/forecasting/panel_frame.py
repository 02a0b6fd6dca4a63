"""Reading a file of many series: long format (one row per series and time step) or wide (one column per series).

Each series becomes a :class:`PanelSeries`: its observed targets (leading empty cells dropped, since a series that
starts later than the file is normal), the known-future covariates of those steps and of any rows after its last
target (the values the forecast steps will have, given in advance), its time axis and the file's row numbers, so
every error names a row. Calendar features (month, day of week, hour …) come from the time column as a sine and
cosine pair each, so December sits next to January.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqlit.data.forecasting.csv import fill_missing, parse_numbers, read_csv
from seqlit.data.forecasting.time_axis import TimeAxis, parse_times
from seqlit.errors import InputError, require

CALENDAR = {
    "month": 12,
    "quarter": 4,
    "dayofweek": 7,
    "dayofyear": 366,
    "day": 31,
    "hour": 24,
    "minute": 60,
    "weekofyear": 53,
}  # fmt: skip  (feature -> its period)


@dataclass
class PanelSeries:
    """One series of a panel, in data units."""

    name: str
    values: np.ndarray  # (n, K) observed targets, gaps inside filled per ``missing``
    known: np.ndarray  # (n + f, F) known-future covariates and calendar features; f rows after the last target
    time: TimeAxis | None
    rows: np.ndarray  # (n,) the file's data-row number (1-based) of each observed step


def calendar_features(stamps: pd.DatetimeIndex, names: list[str]) -> np.ndarray:
    """(N, 2 * len(names)): a sine and a cosine of each calendar feature over its period."""
    cols = []
    for name in names:
        value = stamps.isocalendar().week.to_numpy(float) if name == "weekofyear" else getattr(stamps, name)
        angle = 2 * np.pi * np.asarray(value, float) / CALENDAR[name]
        cols += [np.sin(angle), np.cos(angle)]
    return np.stack(cols, axis=1) if cols else np.zeros((len(stamps), 0))


def known_names(covariates: list[str], calendar: list[str]) -> list[str]:
    """Names of the known-future columns, in the order of :attr:`PanelSeries.known`."""
    return [*covariates, *(f"{c}_{f}" for c in calendar for f in ("sin", "cos"))]


def read_panel(hp, horizon: int) -> list[PanelSeries]:  # hp: the data module's hyperparameters
    """Every series of the file ``hp.path``, in order of first appearance (long) or of ``hp.target`` (wide)."""
    frame = read_csv(hp.path, hp.delimiter)
    header = list(frame.columns)
    targets = [hp.target] if isinstance(hp.target, str) else list(hp.target)
    ids = [hp.series_id] if isinstance(hp.series_id, str) else list(hp.series_id or [])
    covariates, calendar = list(hp.future_covariates or []), list(hp.calendar or [])
    require(bool(ids) != hp.wide_as_series, "data.series_id", hp.series_id,
            "one id column or a list of them for a long file, or empty with data.wide_as_series=true")  # fmt: skip
    unknown = [c for c in calendar if c not in CALENDAR]
    require(not unknown, "data.calendar", calendar, f"a list drawn from {', '.join(CALENDAR)}")
    require(not calendar or hp.time_column, "data.calendar", calendar, "empty without data.time_column")
    roles = [("data.series_id", c) for c in ids] + [("data.target", c) for c in targets]
    roles += [("data.future_covariates", c) for c in covariates]
    roles += [("data.time_column", hp.time_column)] if hp.time_column else []
    for param, name in roles:
        require(name in header, param, name, f"a column of {hp.path}, which has {header}")
    used = [n for _, n in roles]
    dup = next((n for n in used if used.count(n) > 1), None)
    require(dup is None, "data columns", dup, "each column in one role only (id, target, covariate, time)")
    values = np.stack([parse_numbers(frame[c], c) for c in targets], axis=1)  # (N, K or S)
    known = np.stack([parse_numbers(frame[c], c) for c in covariates], axis=1) if covariates else None
    if hp.time_column:
        times, style = parse_times(frame[hp.time_column], hp.time_column, hp.time_format)  # once, for every series
        require(not calendar or style is not None, "data.calendar", calendar, "empty: data.time_column holds numbers")
    if hp.wide_as_series:  # one series per target column, all on the file's rows
        groups = [(name, np.arange(len(frame)), [j]) for j, name in enumerate(targets)]
    else:
        key = frame[ids].agg("/".join, axis=1) if len(ids) > 1 else frame[ids[0]]
        codes, names = pd.factorize(key)  # series in order of first appearance
        order = np.argsort(codes, kind="stable")  # rows of a series keep the file's order
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        groups = [(str(names[codes[i[0]]]), i, list(range(len(targets)))) for i in np.split(order, bounds)]
    out = []
    for name, idx, cols in groups:
        where = f" within series {name!r}"
        observed = np.flatnonzero(np.isfinite(values[idx][:, cols]).all(1))
        if len(observed) == 0:
            continue  # no value at all: counted with the series too short for a window
        first, last = observed[0], observed[-1]
        require(last > first, "data.series_id" if ids else "data.target", hp.series_id or name,
                f"series with 2 rows or more: series {name!r} has one value (data row {idx[first] + 1}); a series of "
                "one row is usually a wrong id column")  # fmt: skip
        rows = idx[first:]  # leading gaps dropped; rows after the last target carry future covariates
        time = None
        if hp.time_column:
            cells = frame[hp.time_column].iloc[rows]
            time = TimeAxis(cells, hp.time_column, hp.time_format, times=times[rows], style=style, rows=rows + 1,
                            where=where)  # fmt: skip
        n = last - first + 1
        series = values[rows[:n]][:, cols]
        gaps = np.flatnonzero(~np.isfinite(series).all(1))
        if len(gaps) and hp.missing == "error":  # the file's own row numbers, not the series' step numbers
            raise InputError(
                f"data.missing='error': series {name!r} has {len(gaps)} missing target values after its first one, "
                f"the first at data row {rows[gaps[0]] + 1}; fill them or set data.missing to 'ffill' or 'interpolate'"
            )
        series = fill_missing(series, [targets[c] for c in cols], hp.missing)
        feats = [known[rows]] if known is not None else []
        if calendar:
            stamps = pd.DatetimeIndex(time.times)
            extra = max(0, n + horizon - len(rows))  # stamps of forecast steps the file has no rows for
            stamps = stamps.append(time.future_times(extra)) if extra else stamps
            feats.append(calendar_features(stamps, calendar))
        width = len(known_names(covariates, calendar))
        feats = [np.pad(f, ((0, max(0, n + horizon - len(f))), (0, 0)), constant_values=np.nan) for f in feats]
        block = np.hstack(feats) if feats else np.zeros((n + horizon, width))
        bad = np.argwhere(~np.isfinite(block[:n]))
        if len(bad):
            r, c = bad[0]
            raise InputError(
                f"data.future_covariates: {known_names(covariates, calendar)[c]!r} is missing{where} at data row "
                f"{rows[r] + 1}: known-future covariates need a value on every observed step"
            )
        out.append(PanelSeries(name=name, values=series, known=block, time=time, rows=rows[:n] + 1))
    return out


def check_future(series: PanelSeries, horizon: int, names: list[str]) -> None:
    """The known-future columns for the ``horizon`` steps after the last target, or an error naming what is missing."""
    n = len(series.values)
    ahead = series.known[n : n + horizon]
    missing = [names[c] for c in np.flatnonzero(~np.isfinite(ahead).all(0))]
    if missing:
        given = int(np.isfinite(ahead).all(1).sum())
        raise InputError(
            f"data.future_covariates: predicting the {horizon} steps after series {series.name!r}'s last target "
            f"needs {missing} on those steps, and the file gives them on {given}: add rows with these columns (and "
            "an empty target) after its last value"
        )
