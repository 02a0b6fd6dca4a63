"""Reference forecasts a learned model must beat: persistence, seasonal naive and a direct linear AR model.

Every function takes the whole raw series (N, K) of targets, in the data's units, and the positions p of the first
predicted step of each window, and returns forecasts (M, H, K) for steps p .. p + H - 1. They read only steps before p
(what a forecaster standing at p knows), possibly further back than the model's window: the past is known, and a
baseline denied it would be a straw man. Where a position has too little history the forecast is NaN; the data module
makes sure no evaluated window is in that case. The AR model is fit on the training span alone.
"""

from __future__ import annotations

import numpy as np


def persistence(series: np.ndarray, positions: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat the last observed value: forecast[m, h] = series[p - 1] for every step h."""
    out = np.full((len(positions), horizon, series.shape[1]), np.nan)
    ok = positions >= 1
    out[ok] = series[positions[ok] - 1][:, None, :]
    return out


def seasonal_naive(series: np.ndarray, positions: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat the last observed season: step p + h takes the value one (or more) whole seasons earlier.

    forecast[m, h] = series[p + h - season * (h // season + 1)], the latest value at the same phase before p.
    With ``season`` 1 this is persistence.
    """
    h = np.arange(horizon)
    src = positions[:, None] + h - season * (h // season + 1)  # (M, H), every index < p
    out = np.full((len(positions), horizon, series.shape[1]), np.nan)
    ok = positions >= season
    out[ok] = series[src[ok]]
    return out


def fit_direct_ar(train: np.ndarray, order: int, horizon: int) -> np.ndarray:
    """Least-squares coefficients (K, H, order + 1) of one linear model per target and step ahead ("direct" AR).

    For target k and step h: series[t + h] ≈ c · [series[t - order], ..., series[t - 1], 1], fit over every t of
    ``train`` (N, K) whose inputs and target both lie inside it. Direct (one fit per step) rather than iterating a
    one-step model, the same strategy as the network's multi-step head.
    """
    n, k = train.shape
    rows = n - order - horizon + 1
    if rows < order + 1:
        raise ValueError(f"{n} training steps are too few to fit AR({order}) for {horizon} steps ahead")
    coef = np.zeros((k, horizon, order + 1))
    view = np.lib.stride_tricks.sliding_window_view(train, order + horizon, axis=0)  # (rows, K, order + H)
    for j in range(k):
        lags = np.hstack([view[:, j, :order], np.ones((rows, 1))])  # (rows, order + 1)
        targets = view[:, j, order:]  # (rows, H)
        coef[j] = np.linalg.lstsq(lags, targets, rcond=None)[0].T
    return coef


def direct_ar(series: np.ndarray, positions: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """Forecasts (M, H, K) of the fitted direct AR model from the ``order`` steps before each position."""
    k, horizon, order = coef.shape[0], coef.shape[1], coef.shape[2] - 1
    out = np.full((len(positions), horizon, k), np.nan)
    ok = positions >= order
    if ok.any():
        idx = positions[ok][:, None] + np.arange(-order, 0)  # (M', order)
        for j in range(k):
            lags = np.hstack([series[idx, j], np.ones((len(idx), 1))])  # (M', order + 1)
            out[ok, :, j] = lags @ coef[j].T
    return out
