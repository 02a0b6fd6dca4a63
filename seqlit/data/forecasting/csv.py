"""Forecasting a user's own CSV file: one row per time step, target columns, covariates and an optional time column.

The file is read with pandas into a numeric series whose first K columns are the targets, then
the numeric covariates, then one-hot indicators of the categorical covariates (categories taken from the training
span, so an unseen category is all zeros rather than leaked). Everything after that, the chronological split, the scaler
fit on the training span, the windows and the loaders, is :class:`~seqlit.data.forecasting.base.SeriesDataModule`'s
one path, which this module only feeds. It adds what real files need: missing values (an error naming lines and
columns, or forward-fill / linear interpolation), a time column (:mod:`~seqlit.data.forecasting.time_axis`: checked to
increase, echoed in predictions, extended past the end of the file for the future forecast) and baseline forecasts on
every window (persistence, seasonal naive, direct AR), which the batch carries so the task scores them on exactly the
model's windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from seqlit.data.forecasting import baselines as bl
from seqlit.data.forecasting.base import SeriesDataModule
from seqlit.data.forecasting.time_axis import TimeAxis
from seqlit.data.forecasting.windows import split_by_size
from seqlit.errors import InputError, require

MISSING = {"", "na", "nan", "null", "none", "?", "n/a", "#n/a", "-"}
BASELINES = ("persistence", "seasonal_naive", "ar")

FLOAT32_MAX = float(np.finfo(np.float32).max)


def read_csv(path: str, delimiter: str) -> pd.DataFrame:
    """Every cell of a CSV file as stripped text (empty where missing), read by pandas' C parser (a 2M-row file takes
    seconds); a missing or empty file, or a row with more fields than the header, is an InputError."""
    file = Path(path)
    require(file.is_file(), "data.path", path, "an existing CSV file with a header row")
    try:  # text first: each role (target, time, id) parses its own columns and names its own bad cells
        frame = pd.read_csv(
            file,
            sep=delimiter,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=True,
            encoding="utf-8-sig",
        )  # fmt: skip  (utf-8-sig: spreadsheet BOMs)
    except pd.errors.EmptyDataError:
        frame = pd.DataFrame()
    except UnicodeDecodeError as err:  # another encoding (or not text at all): name the file, not the codec
        raise InputError(
            f"data.path={path!r} is not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start}): "
            "save the CSV as UTF-8"
        ) from None
    except pd.errors.ParserError as exc:  # pandas: "Expected 3 fields in line 5, saw 4"
        raise InputError(f"data.path={path!r}: {exc}".strip() + ": every row needs one value per column") from None
    require(len(frame) >= 1, "data.path", path, "a CSV file with a header row and at least one data row")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame.apply(lambda c: c.str.strip())


def parse_numbers(cells: pd.Series, column: str) -> np.ndarray:
    """Floats of one column, NaN where a cell is missing; any other non-number is an error naming its row."""
    cells = cells.reset_index(drop=True)
    missing = cells.str.lower().isin(MISSING).to_numpy()
    out = pd.to_numeric(cells.where(~missing, "nan"), errors="coerce").to_numpy(float, copy=True)  # NaN if no number
    for i in np.flatnonzero(~missing & ~np.isfinite(out)):  # only the bad cells go through the slow path
        cell = cells[i]
        try:
            out[i] = float(cell)
        except ValueError:
            out[i] = np.inf
        if not np.isfinite(out[i]):
            raise InputError(
                f"column {column!r} has the non-numeric value {cell!r} in data row {i + 1}: numeric columns need "
                "finite numbers (empty or NA for missing); list text columns under data.categorical"
            )
    for i in np.flatnonzero(np.abs(np.nan_to_num(out)) > FLOAT32_MAX)[:1]:  # training runs in float32: it would be inf
        raise InputError(
            f"column {column!r} has the value {cells[i]!r} in data row {i + 1}: numeric columns need magnitudes up to "
            f"{FLOAT32_MAX:.3g} (float32); rescale the column"
        )
    return out


def fill_missing(values: np.ndarray, names: list[str], how: str) -> np.ndarray:
    """Handle NaNs per ``how``: ``error`` names the rows and columns, ``ffill`` / ``interpolate`` fill them."""
    missing = np.isnan(values)
    if not missing.any():
        return values
    where = []
    for j in np.flatnonzero(missing.any(0)):
        rows = np.flatnonzero(missing[:, j]) + 1
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        where.append(f"{names[j]!r} at data rows {', '.join(map(str, rows[:5]))}{more}")
    if how == "error":
        raise InputError(
            f"data.missing='error': missing values in {'; '.join(where)}; fill them in the file or set "
            "data.missing to 'ffill' or 'interpolate'"
        )
    out = values.copy()
    steps = np.arange(len(values))
    for j in np.flatnonzero(missing.any(0)):
        ok = ~missing[:, j]
        if not ok[0]:  # nothing earlier to carry forward or interpolate from
            raise InputError(
                f"data.missing={how!r} cannot fill column {names[j]!r}: its first data row is missing and there is "
                "no earlier value; drop the leading rows"
            )
        if how == "ffill":
            out[:, j] = values[np.maximum.accumulate(np.where(ok, steps, 0)), j]
        else:  # linear in the row index (one row per step); trailing gaps hold the last value
            out[:, j] = np.interp(steps, steps[ok], values[ok, j])
    return out


class TimeSeriesDataModule(SeriesDataModule):
    """Windows of a CSV time series (see the module docstring).

    Args:
        path: the CSV file: a header row, then one row per time step, oldest first.
        target: the column (or list of columns) to forecast.
        covariates: further numeric columns the model sees in its window (observed in the past, not forecast).
        categorical: text columns the model sees one-hot encoded (categories from the training span).
        time_column: column of times or numbers: checked to increase, written beside every prediction.
        time_format: strptime format of ``time_column``; detected from common formats when empty.
        missing: ``error`` (name the rows and columns), ``ffill`` (carry the last value) or ``interpolate`` (linear).
        transform: ``none``, ``sqrt`` (counts: their noise grows with the level) or ``log1p``, applied to the targets
            before scaling and undone for every metric and prediction.
        season: season length in steps for the seasonal-naive baseline (12 for monthly data with a yearly cycle).
        ar_order: lags of the linear AR baseline, fit by least squares on the training span.
        baselines: which reference forecasts to compute and log: any of persistence, seasonal_naive, ar.
        delimiter: field separator of the file.
        window, horizon, val_size, test_size, stride, scaler, batch_size, shuffle, num_workers, context_across_spans,
        seed: see :class:`~seqlit.data.forecasting.base.SeriesDataModule`; spans are usually fractions here (0.1 = 10%).
    """

    def __init__(
        self,
        *,
        path: str,
        target: str | list[str],
        covariates: list[str] | None = None,
        categorical: list[str] | None = None,
        time_column: str | None = None,
        time_format: str | None = None,
        missing: Literal["error", "ffill", "interpolate"] = "error",
        transform: Literal["none", "sqrt", "log1p"] = "none",
        season: int = 12,
        ar_order: int = 24,
        baselines: list[str] | None = None,
        delimiter: str = ",",
        window: int = 24,
        horizon: int = 1,
        val_size: int | float = 0.1,
        test_size: int | float = 0.2,
        stride: int = 1,
        scaler: Literal["none", "standard", "minmax"] = "standard",
        batch_size: int = 64,
        shuffle: bool = True,
        num_workers: int = 0,
        context_across_spans: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(
            window=window,
            horizon=horizon,
            val_size=val_size,
            test_size=test_size,
            stride=stride,
            scaler=scaler,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=num_workers,
            context_across_spans=context_across_spans,
            seed=seed,
        )
        require(missing in ("error", "ffill", "interpolate"), "data.missing", missing, "error, ffill or interpolate")
        require(season >= 1, "data.season", season, "a season length of at least 1 step")
        require(ar_order >= 1, "data.ar_order", ar_order, "at least 1 lag")
        chosen = BASELINES if baselines is None else baselines
        unknown = [b for b in chosen if b not in BASELINES]
        require(not unknown, "data.baselines", baselines, f"a list drawn from {', '.join(BASELINES)}")
        require(transform in ("none", "sqrt", "log1p"), "data.transform", transform, "none, sqrt or log1p")
        require(len(delimiter) == 1, "data.delimiter", delimiter, "one character")
        self.save_hyperparameters()
        self.target_transform = transform
        self.time: TimeAxis | None = None
        self.categories: dict[str, list[str]] = {}
        self._onehot: list[int] = []
        self._ar: np.ndarray | None = None

    @property
    def targets(self) -> list[str]:
        t = self.hparams.target
        return [t] if isinstance(t, str) else list(t)

    def load_series(self) -> tuple[np.ndarray, list[str], int]:
        hp = self.hparams
        frame = read_csv(hp.path, hp.delimiter)
        header, rows = list(frame.columns), frame
        covariates, categorical = list(hp.covariates or []), list(hp.categorical or [])
        require(len(self.targets) >= 1, "data.target", hp.target, "at least one column name")
        wanted = [("data.target", c) for c in self.targets] + [("data.covariates", c) for c in covariates]
        wanted += [("data.categorical", c) for c in categorical]
        wanted += [("data.time_column", hp.time_column)] if hp.time_column else []
        for param, name in wanted:
            require(name in header, param, name, f"a column of {hp.path}, which has {header}")
        used = [n for _, n in wanted]
        dup = next((n for n in used if used.count(n) > 1), None)
        require(dup is None, "data columns", dup, "each column in one role only (target, covariate, time)")
        column = {name: frame[name] for name in used}
        if hp.time_column:
            self.time = TimeAxis(column[hp.time_column], hp.time_column, hp.time_format)
        numeric = self.targets + covariates
        values = np.stack([parse_numbers(column[c], c) for c in numeric], axis=1)  # (N, K + numeric covariates)
        values = fill_missing(values, numeric, hp.missing)
        # categories from the training span only; bounds are recomputed identically by the base class
        n_train = split_by_size(len(rows), hp.val_size, hp.test_size)["train"][1]
        blocks, names = [values], list(numeric)
        for c in categorical:
            cats = sorted(set(column[c].iloc[:n_train]))
            self.categories[c] = cats
            cells = column[c].to_numpy()
            blocks.append(np.stack([cells == cat for cat in cats], axis=1).astype(np.float64))  # (N, categories)
            names += [f"{c}={cat}" for cat in cats]
        self._onehot = list(range(len(numeric), len(names)))
        return np.hstack(blocks), names, len(self.targets)

    def unscaled_columns(self) -> list[int]:
        return self._onehot

    def transform_targets(self, targets: np.ndarray, names: list[str]) -> np.ndarray:
        """``sqrt`` (counts) or ``log1p`` (positive, multiplicative) stabilise the targets' variance; a value outside
        the transform's domain is an error naming the column."""
        kind = self.target_transform
        if kind == "none":
            return targets
        low = 0.0 if kind == "sqrt" else -1.0
        for j in range(targets.shape[1]):
            bad = np.flatnonzero(targets[:, j] < low if kind == "sqrt" else targets[:, j] <= low)
            if len(bad):
                raise InputError(
                    f"target_transform={kind!r} cannot take {names[j]!r}: value {targets[bad[0], j]:g} at step "
                    f"{bad[0]} is {'negative' if kind == 'sqrt' else '<= -1'}; use 'none'"
                )
        return np.sqrt(targets) if kind == "sqrt" else np.log1p(targets)

    def baseline_forecasts(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        hp = self.hparams
        chosen = BASELINES if hp.baselines is None else hp.baselines
        series = self.series[:, : self.num_targets]
        if self._ar is None and "ar" in chosen:
            self._check_history()
            train = series[slice(*self.bounds["train"])]
            rows = len(train) - hp.ar_order - hp.horizon + 1
            require(
                rows >= hp.ar_order + 1,
                "data.ar_order",
                hp.ar_order,
                f"small enough to fit on the {len(train)} training steps (needs 2*ar_order + horizon steps); lower "
                "it or drop 'ar' from data.baselines",
            )
            self._ar = bl.fit_direct_ar(train, hp.ar_order, hp.horizon)
        self._check_history()
        found = {
            "persistence": lambda: bl.persistence(series, positions, hp.horizon),
            "seasonal_naive": lambda: bl.seasonal_naive(series, positions, hp.horizon, hp.season),
            "ar": lambda: bl.direct_ar(series, positions, self._ar),
        }
        return {name: found[name]() for name in BASELINES if name in chosen}

    def _check_history(self) -> None:
        """Every evaluated window's baselines need ``season`` / ``ar_order`` steps of history before it."""
        hp = self.hparams
        first = self.bounds["train"][1] + (0 if self.context_across_spans else hp.window)
        chosen = BASELINES if hp.baselines is None else hp.baselines
        for name, param, need in (("seasonal_naive", "season", hp.season), ("ar", "ar_order", hp.ar_order)):
            require(
                name not in chosen or need <= first,
                f"data.{param}",
                need,
                f"at most {first}, the steps before the first evaluated window (or drop {name!r} from data.baselines)",
            )

    def time_labels(self, positions: np.ndarray) -> list[str]:
        """Times of series steps (past the file's end for the future forecast); step numbers without a time column."""
        if self.time is None:
            return [str(int(p)) for p in positions]
        return [self.time.label(int(p)) for p in positions]

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        return {**state, "categories": self.categories} if state else state
