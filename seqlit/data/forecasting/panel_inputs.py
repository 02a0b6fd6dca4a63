"""The inputs of a panel's windows: known-future columns on the last step, and window-local scaling.

Window-local scaling: each window's targets measured from its own last value, as global forecasters (DeepAR,
N-BEATS) do for series that trend.

Per-series statistics fit on a training span leave a trending series' recent windows far from zero, at a level the
network must reproduce exactly; measured from the window's last value the targets become the change since the
forecast origin (the naive forecast is then 0), which has the same shape at any level and any point of the trend.

* ``last``: ``(v - v_last) / s``, ``s`` the series' own scale: changes in units of the series' spread.
* ``mean``: ``(v - v_last) / mean|v|`` over the window: relative changes, for positive series whose noise grows
  with their level (employment, sales).

The window's shift and scale travel in the batch (``shift``, ``scale``), so the task undoes them per window.
"""

from __future__ import annotations

import numpy as np

LOCAL_SCALING = ("none", "last", "mean")


def local_scaling(
    past: np.ndarray, ahead: np.ndarray, scale: np.ndarray, mode: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windows scaled on their own.

    Args:
        past: (M, W, K) each window's targets in data units.
        ahead: (M, H, K) the targets it forecasts in data units (NaN where unknown).
        scale: (K,) the series' own scale, used by ``last``.
        mode: ``last`` or ``mean`` (see the module docstring).

    Returns the scaled ``past`` and ``ahead`` and each window's shift and scale (M, K), in data units, such that
    ``data = scaled * scale + shift``.
    """
    shift = past[:, -1]  # (M, K): the forecast origin's value
    if mode == "mean":
        local = np.abs(past).mean(1)  # (M, K)
        local = np.where(local > 1e-12, local, 1.0)  # an all-zero window: changes in data units
    else:
        local = np.broadcast_to(scale, shift.shape)
    return (past - shift[:, None]) / local[:, None], (ahead - shift[:, None]) / local[:, None], shift, local


def panel_windows(feats: np.ndarray, known: np.ndarray, positions: np.ndarray, window: int, horizon: int) -> np.ndarray:
    """Inputs (M, W, C + H*F) of the windows whose first forecast step is at ``positions`` (M,).

    ``feats`` (n, C) are the scaled per-step features (targets, then the known columns), ``known`` (n + H, F) the
    known-future columns. The model must see the known values of the steps it forecasts; rather than a second input to
    the network, they are appended as H*F extra features that are zero on every step but the last, where the encoder's
    final state (which the head reads) picks them up: ``x[m, -1, C + h*F + f] = known[p + h, f]`` for forecast step
    ``p + h`` (h = 0 is the first forecast step, the one right after the window). The network stays a plain
    ForecastNet whose ``input_size`` grows.
    """
    past = feats[positions[:, None] + np.arange(-window, 0)]  # (M, W, C): steps p-W .. p-1
    F = known.shape[1]
    x = np.zeros((len(positions), window, feats.shape[1] + horizon * F), np.float32)  # (M, W, C + H*F)
    x[:, :, : feats.shape[1]] = past
    if F:
        ahead = known[positions[:, None] + np.arange(horizon)]  # (M, H, F): steps p .. p+H-1, the forecast steps
        x[:, -1, feats.shape[1] :] = ahead.reshape(len(positions), horizon * F)
    return x
