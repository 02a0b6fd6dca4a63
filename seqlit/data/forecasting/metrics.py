"""Forecast errors over many series, as forecasting competitions report them: MASE, sMAPE and RMSE, in numpy.

MASE (mean absolute scaled error) divides each series' absolute errors by that series' own in-sample seasonal-naive
error, the mean of ``|y[t] - y[t - m]|`` over its history before the evaluated span, so series of any size weigh
alike and 1.0 means "as good as the seasonal-naive forecast was in sample". sMAPE is in percent (0 to 200). RMSE is in
the data's units, so it is dominated by the largest series. Tables come out per step ahead, per series and overall;
the overall MASE is the mean over series of each series' mean over its origins and steps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from seqlit.errors import require


def seasonal_scale(history: np.ndarray, m: int) -> np.ndarray:
    """In-sample seasonal-naive MAE (K,) of ``history`` (n, K): the denominator of MASE with season ``m``."""
    require(len(history) > m, "season", m, f"shorter than the history before the evaluated span ({len(history)} steps)")
    return np.abs(history[m:] - history[:-m]).mean(0)


def mase(y: np.ndarray, pred: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Scaled absolute errors: ``|y - pred| / scale``, ``scale`` broadcast over the leading axes (mean it for MASE)."""
    return np.abs(y - pred) / scale


def smape(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Symmetric absolute percentage errors, in percent (0 where truth and forecast are both 0)."""
    denom = np.abs(y) + np.abs(pred)
    return np.divide(200 * np.abs(y - pred), denom, out=np.zeros_like(denom, dtype=float), where=denom > 0)


def score_table(
    y: np.ndarray, forecasts: dict[str, np.ndarray], series: np.ndarray, scale: np.ndarray, names: list[str]
) -> dict[str, pd.DataFrame]:
    """Error tables of several forecasts of the same items.

    Args:
        y: truth (M, H, K) of M forecasts (a series at an origin), H steps ahead, K targets.
        forecasts: name → (M, H, K) forecasts (the model's and the baselines').
        series: (M,) index of each item's series.
        scale: (M, K) each item's series' MASE denominator.
        names: series names, by index.

    Returns ``step`` (one row per step ahead), ``series`` (one per series) and ``overall`` (one row), with columns
    ``{forecast}_mase``, ``{forecast}_smape``, ``{forecast}_rmse``.
    """
    H = y.shape[1]
    out: dict[str, dict[str, np.ndarray]] = {"step": {}, "series": {}, "overall": {}}
    ids = np.unique(series)
    for name, pred in forecasts.items():
        errors = {"mase": mase(y, pred, scale[:, None]), "smape": smape(y, pred), "rmse": (y - pred) ** 2}  # (M, H, K)
        for metric, e in errors.items():
            per_series = np.array([e[series == s].mean() for s in ids])  # each series counts once
            root = np.sqrt if metric == "rmse" else (lambda v: v)
            out["step"][f"{name}_{metric}"] = root(e.mean(axis=(0, 2)))
            out["series"][f"{name}_{metric}"] = root(per_series)
            total = e.mean() if metric == "rmse" else per_series.mean()  # RMSE pools; MASE, sMAPE: series alike
            out["overall"][f"{name}_{metric}"] = np.atleast_1d(root(total))
    return {
        "step": pd.DataFrame({"step": np.arange(1, H + 1), **out["step"]}),
        "series": pd.DataFrame({"series": [names[i] for i in ids], **out["series"]}),
        "overall": pd.DataFrame({"forecasts": [len(y)], "series": [len(ids)], **out["overall"]}),
    }
