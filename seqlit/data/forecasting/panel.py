"""Many series, one global model: windows of every series of a panel file; no window crosses from one series to another.

A panel is a long file (``series_id`` names the id column, or a list of them; one row per series and time step) or a
wide one (``wide_as_series: true``: every ``target`` column is a series). Series may differ in length and start (empty
target cells before a series' first value are normal); each is split chronologically on its own (its last
``test_size`` steps are its test span), and a series too short to give a window in every span is skipped and
counted. Targets are scaled per series by default (each series' training span), so one model serves series of any
size; the scale of each window travels in the batch (``scale``, ``shift`` (B, K)) and the task undoes it per window.
Known-future covariates (``future_covariates``, ``calendar``) sit beside the targets at every past step and, for the
H forecast steps, flattened on the window's last step (see :func:`panel_windows`). Baselines (naive, seasonal naive)
travel in the batch as for the single-series modules.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from seqlit.data.forecasting.base import ForecastSpec, SeriesDataModule
from seqlit.data.forecasting.panel_frame import CALENDAR, PanelSeries, check_future, known_names, read_panel
from seqlit.data.forecasting.panel_inputs import LOCAL_SCALING, local_scaling, panel_windows
from seqlit.data.forecasting.windows import SPANS, resolve_size
from seqlit.data.loading import TensorDictDataset
from seqlit.errors import require, say

PANEL_BASELINES = ("naive", "seasonal_naive")


class PanelDataModule(SeriesDataModule):
    """Windows of every series of a panel file (see the module docstring).

    Args:
        path: the CSV file.
        target: the column to forecast (long format; a list forecasts several at once), or the series' columns (wide).
        series_id: the id column (or a list of columns whose values together name a series) of a long file.
        wide_as_series: every ``target`` column is a series of its own (wide file); ``series_id`` stays empty.
        time_column: times of the rows: checked to increase within each series, echoed in predictions.
        time_format: strptime format of ``time_column``; read by pandas when empty.
        future_covariates: numeric columns known in advance (holidays, promotions, prices): the model sees them for
            past steps and for the steps it forecasts. To predict past the last target, the file needs rows with these
            columns (and an empty target) for the next ``horizon`` steps of every series.
        calendar: features from the time column, as a sine and cosine each: any of month, quarter, dayofweek,
            dayofyear, day, hour, minute, weekofyear (future steps' come from the inferred frequency).
        scaling: ``series`` (each series' own statistics, the default) or ``global`` (one set for the whole panel).
        local_scaling: ``none``, or measure each window's targets from its last value: ``last`` in the series'
            scale, ``mean`` relative to the window's mean absolute value (see :mod:`.panel_inputs`); for trends.
        missing: target gaps after a series' first value: ``error``, ``ffill`` or ``interpolate``.
        season: season length of the seasonal-naive baseline (and of MASE in ``seqlit backtest``).
        baselines: reference forecasts computed on every window: any of naive, seasonal_naive.
        delimiter: field separator of the file.
        window, horizon, val_size, test_size, stride, scaler, batch_size, shuffle, num_workers, seed: see
            :class:`~seqlit.data.forecasting.base.SeriesDataModule`; the spans are per series (steps, or a fraction
            of each series' length).
    """

    def __init__(
        self,
        *,
        path: str,
        target: str | list[str],
        series_id: str | list[str] | None = None,
        wide_as_series: bool = False,
        time_column: str | None = None,
        time_format: str | None = None,
        future_covariates: list[str] | None = None,
        calendar: list[str] | None = None,
        scaling: Literal["series", "global"] = "series",
        local_scaling: Literal["none", "last", "mean"] = "none",
        missing: Literal["error", "ffill", "interpolate"] = "error",
        season: int = 12,
        baselines: list[str] | None = None,
        delimiter: str = ",",
        window: int = 24,
        horizon: int = 1,
        val_size: int | float = 12,
        test_size: int | float = 24,
        stride: int = 1,
        scaler: Literal["none", "standard", "minmax"] = "standard",
        batch_size: int = 256,
        shuffle: bool = True,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__(window=window, horizon=horizon, val_size=val_size, test_size=test_size, stride=stride,
                         scaler=scaler, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                         context_across_spans=True, seed=seed)  # fmt: skip
        require(scaling in ("series", "global"), "data.scaling", scaling, "series or global")
        require(local_scaling in LOCAL_SCALING, "data.local_scaling", local_scaling, "none, last or mean")
        require(missing in ("error", "ffill", "interpolate"), "data.missing", missing, "error, ffill or interpolate")
        require(season >= 1, "data.season", season, "a season length of at least 1 step")
        chosen = PANEL_BASELINES if baselines is None else baselines
        unknown = [b for b in chosen if b not in PANEL_BASELINES]
        require(not unknown, "data.baselines", baselines, f"a list drawn from {', '.join(PANEL_BASELINES)}")
        unknown = [c for c in calendar or [] if c not in CALENDAR]
        require(not unknown, "data.calendar", calendar, f"a list drawn from {', '.join(CALENDAR)}")
        require(len(delimiter) == 1, "data.delimiter", delimiter, "one character")
        self.save_hyperparameters()
        self.panel: list[PanelSeries] = []
        self.skipped: list[str] = []
        self.stats: dict[str, list] = {}  # per-series target shift / scale, known-column shift / scale: plain lists

    @property
    def chosen_baselines(self) -> tuple[str, ...]:
        return PANEL_BASELINES if self.hparams.baselines is None else tuple(self.hparams.baselines)

    @property
    def scales_per_window(self) -> bool:
        """Whether batches carry their own ``scale``/``shift`` that differ from the spec's (per-series scaling)."""
        local = self.hparams.get("local_scaling", "none") != "none"
        return local or (self.hparams.scaling == "series" and self.scaler.kind != "none")

    @property
    def known_names(self) -> list[str]:
        return known_names(list(self.hparams.future_covariates or []), list(self.hparams.calendar or []))

    def spans(self, n: int) -> dict[str, tuple[int, int]]:
        """``[start, end)`` of each span of a series of ``n`` observed steps (val carved from train's end)."""
        n_test = resolve_size(self.settings.test_size, n, "data.test_size")
        n_val = resolve_size(self.settings.val_size, n, "data.val_size")
        n_train = n - n_val - n_test
        return {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}

    def _fits(self, n: int) -> bool:
        """Whether a series of ``n`` steps gives a training window, and a forecast in each later span."""
        W, H = self.settings.window, self.settings.horizon
        b = self.spans(n)
        return b["train"][1] >= W + H and all(b[s][1] - b[s][0] >= H for s in ("val", "test"))

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:  # idempotent: the CLI sets data up once, early, before the Trainer does
            if stage == "predict":
                self._check_future()
            return
        W, H = self.settings.window, self.settings.horizon
        panel = read_panel(self.hparams, H)
        self.panel = [s for s in panel if self._fits(len(s.values))]
        self.skipped = [s.name for s in panel if not self._fits(len(s.values))]
        if self.skipped:
            say(f"{len(self.skipped)} of {len(panel)} series are too short for one window per span (window + horizon "
                f"training steps, then horizon steps for val and test) and are skipped: {', '.join(self.skipped[:5])}"
                + (" …" if len(self.skipped) > 5 else ""))  # fmt: skip
        require(bool(self.panel), "data.window", W, "small enough that at least one series gives a window per span")
        self._fit_scaling()
        self._apply_saved()  # a checkpoint's statistics, when it was loaded first
        self._build()
        self.baseline_names = [b for b in PANEL_BASELINES if b in self.chosen_baselines]
        self.series = None  # many series: the single-series figure's history does not apply
        self.names = self.target_names()
        if stage == "predict":
            self._check_future()

    def _build(self) -> None:
        """The windows of every span from the panel and its scaling statistics."""
        hp, W, H = self.settings, self.settings.window, self.settings.horizon
        parts: dict[str, list[dict[str, np.ndarray]]] = {s: [] for s in (*SPANS, "predict")}
        for i, series in enumerate(self.panel):
            n, b = len(series.values), self.spans(len(series.values))
            feats, known = self._features(i)
            starts = {"train": np.arange(W, b["train"][1] - H + 1, hp.stride),
                      "val": np.arange(b["val"][0], b["val"][1] - H + 1),
                      "test": np.arange(b["test"][0], n - H + 1)}  # fmt: skip
            starts["predict"] = np.append(starts["test"], n)  # the test windows, then the unknown future
            for span, pos in starts.items():
                parts[span].append(self._windows(i, feats, known, pos))
        for span, chunks in parts.items():
            cols = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
            self.datasets[span] = TensorDictDataset(**{k: torch.from_numpy(v) for k, v in cols.items()})

    def target_names(self) -> list[str]:
        t = self.hparams.target
        return ["value"] if self.hparams.wide_as_series else ([t] if isinstance(t, str) else list(t))

    def _check_future(self) -> None:
        for series in self.panel:
            check_future(series, self.settings.horizon, self.known_names)

    def _fit_scaling(self) -> None:
        """Target statistics per series (or one set), known-column statistics over the panel, on training spans."""
        kind = self.scaler.kind
        trains = [s.values[: self.spans(len(s.values))["train"][1]] for s in self.panel]  # (n_train, K) each

        def stats(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            if kind == "none":
                return np.zeros(v.shape[1]), np.ones(v.shape[1])
            shift, scale = (v.mean(0), v.std(0)) if kind == "standard" else (v.min(0), np.ptp(v, 0))
            return shift, np.where(scale > 1e-12 * np.maximum(1, np.abs(shift)), scale, 1.0)  # constant: shift only

        if self.hparams.scaling == "global":
            pairs = [stats(np.concatenate(trains))] * len(trains)
        else:
            pairs = [stats(t) for t in trains]
        F = len(self.known_names)
        known = np.concatenate([s.known[: len(t)] for s, t in zip(self.panel, trains, strict=True)]) if F else None
        k_shift, k_scale = stats(known) if F else (np.zeros(0), np.ones(0))
        n_cov = len(self.hparams.future_covariates or [])
        k_shift[n_cov:], k_scale[n_cov:] = 0.0, 1.0  # calendar features are sines and cosines already
        self.stats = {"series": [s.name for s in self.panel], "shift": [p[0].tolist() for p in pairs],
                      "scale": [p[1].tolist() for p in pairs], "known_shift": k_shift.tolist(),
                      "known_scale": k_scale.tolist()}  # fmt: skip

    def _features(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Scaled per-step features (n, K + F) and known-future columns (n + H, F) of series ``i``."""
        series, H = self.panel[i], self.settings.horizon
        shift, scale = np.array(self.stats["shift"][i]), np.array(self.stats["scale"][i])
        known = (series.known[: len(series.values) + H] - np.array(self.stats["known_shift"])) / np.array(
            self.stats["known_scale"]
        )
        known = np.nan_to_num(known)  # future steps the file does not give: zero (predict checks them first)
        feats = np.hstack([(series.values - shift) / scale, known[: len(series.values)]])
        return feats.astype(np.float32), known.astype(np.float32)

    def _windows(self, i: int, feats: np.ndarray, known: np.ndarray, pos: np.ndarray) -> dict[str, np.ndarray]:
        """The batch columns of series ``i``'s windows whose first forecast step is at ``pos``."""
        series, H, K = self.panel[i], self.settings.horizon, self.panel[i].values.shape[1]
        ahead = pos[:, None] + np.arange(H)  # (M, H) steps forecast
        raw = np.vstack([series.values, np.full((H, K), np.nan)])  # (n + H, K): NaN past the last target
        shift, scale = np.array(self.stats["shift"][i]), np.array(self.stats["scale"][i])
        y = ((raw[ahead] - shift) / scale).astype(np.float32)  # (M, H, K)
        m = self.hparams.season
        lag = ahead - m * (1 + np.arange(H) // m)  # seasonal naive: same season, last observed cycle
        refs = {
            "naive": raw[np.broadcast_to(pos[:, None] - 1, ahead.shape)],
            "seasonal_naive": raw[np.where(lag >= 0, lag, pos[:, None] - 1)],
        }  # fmt: skip  (naive if too early)
        names = [b for b in PANEL_BASELINES if b in self.chosen_baselines]
        M, W, local = len(pos), self.settings.window, self.hparams.get("local_scaling", "none")
        x, shifts, scales = panel_windows(feats, known, pos, W, H), np.tile(shift, (M, 1)), np.tile(scale, (M, 1))
        if local != "none":  # each window from its own last value: the scaled targets are changes since the origin
            past = raw[pos[:, None] + np.arange(-W, 0)]  # (M, W, K) data units
            x[:, :, :K], y, shifts, scales = local_scaling(past, raw[ahead], scale, local)
        out = {"x": x, "y": y.astype(np.float32), "position": pos.astype(np.int64), "series": np.full(M, i, np.int64),
               "scale": scales.astype(np.float32), "shift": shifts.astype(np.float32)}  # fmt: skip
        if names:
            out["baselines"] = np.stack([refs[b] for b in names], axis=1).astype(np.float32)  # (M, NB, H, K)
        return out

    def spec(self) -> ForecastSpec:
        K = self.panel[0].values.shape[1]
        glob = self.hparams.scaling == "global"  # per-series scales travel in the batch; global ones here too
        return ForecastSpec(
            input_size=K + len(self.known_names) * (1 + self.settings.horizon),
            horizon=self.settings.horizon,
            window=self.settings.window,
            num_targets=K,
            target_names=self.target_names(),
            target_shift=[float(v) for v in self.stats["shift"][0]] if glob else [0.0] * K,
            target_scale=[float(v) for v in self.stats["scale"][0]] if glob else [1.0] * K,
            baseline_names=list(self.baseline_names),
            target_transform="none",
        )

    def time_labels(self, positions: np.ndarray, series: np.ndarray | None = None) -> list[str]:
        """Times of steps ``positions`` of series ``series`` (past a series' end for the future forecast)."""
        if series is None or self.hparams.time_column is None:
            return [str(int(p)) for p in positions]
        return [self.panel[int(s)].time.label(int(p)) for p, s in zip(positions, series, strict=True)]

    def series_names(self, series: np.ndarray) -> list[str]:
        return [self.panel[int(s)].name for s in series]

    def state_dict(self) -> dict[str, Any]:
        """Per-series scaling and the skipped series, as plain lists, stored in every checkpoint."""
        return {"scaling": self.stats, "skipped": list(self.skipped)} if self.panel else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Scale with the checkpoint's statistics (the model learned on them), even where the file has changed since
        (rows added move each training span); a series the checkpoint does not know keeps its own. Before
        :meth:`setup` they are kept until it runs."""
        self.saved_stats = state.get("scaling")
        if self.panel and self._apply_saved():
            self._build()

    def _apply_saved(self) -> bool:
        """Take the checkpoint's statistics by series name; whether anything changed."""
        saved = getattr(self, "saved_stats", None)
        if not saved or saved == self.stats:
            return False
        index = {name: i for i, name in enumerate(saved["series"])}
        for i, name in enumerate(self.stats["series"]):
            if name in index:
                j = index[name]
                self.stats["shift"][i], self.stats["scale"][i] = saved["shift"][j], saved["scale"][j]
        self.stats["known_shift"], self.stats["known_scale"] = saved["known_shift"], saved["known_scale"]
        return True
