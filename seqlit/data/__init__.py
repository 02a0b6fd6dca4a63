"""LightningDataModules, a folder per data family; batches are dicts of tensors, batch-first.

Imports are lazy: ``from seqlit.data import SineDataModule`` loads the forecasting family only, not the text one (and
so not ``tokenizers``). The short class paths below are what configs and checkpoints name (``seqlit.data.X``). Each
module's ``spec()`` returns its family's frozen record (``ForecastSpec``, ``ClassifySpec``, ``TextSpec``,
``CharSpec``): the sizes and facts a task takes from the data.

Example:
    >>> from seqlit.data import SineDataModule
    >>> dm = SineDataModule(window=8)
    >>> dm.setup("fit")
    >>> batch = next(iter(dm.train_dataloader()))
    >>> batch["x"].shape, batch["y"].shape
    (torch.Size([32, 8, 1]), torch.Size([32, 1, 1]))
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {  # class name -> the module that defines it
    "SeriesDataModule": "seqlit.data.forecasting.base",
    "ForecastSpec": "seqlit.data.forecasting.base",
    "SineDataModule": "seqlit.data.forecasting.sine",
    "TimeSeriesDataModule": "seqlit.data.forecasting.csv",
    "PanelDataModule": "seqlit.data.forecasting.panel",
    "ClassificationDataModule": "seqlit.data.classification.base",
    "ClassifySpec": "seqlit.data.classification.base",
    "SyntheticDataModule": "seqlit.data.classification.synthetic",
    "NpzDataModule": "seqlit.data.classification.npz",
    "TextDataModule": "seqlit.data.text.datamodule",
    "TextSpec": "seqlit.data.text.datamodule",
    "CorpusDataModule": "seqlit.data.chars",
    "CharSpec": "seqlit.data.chars",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'seqlit.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
