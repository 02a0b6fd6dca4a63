"""LightningDataModules, one per data source. Batches are dicts of tensors, batch-first.

Example:
    >>> from seqlit.data import SineDataModule
    >>> dm = SineDataModule(window=8)
    >>> dm.setup("fit")
    >>> batch = next(iter(dm.train_dataloader()))
    >>> batch["x"].shape, batch["y"].shape
    (torch.Size([32, 8, 1]), torch.Size([32, 1, 1]))
"""

from seqlit.data.corpus import CorpusDataModule
from seqlit.data.series import SeriesDataModule
from seqlit.data.sine import SineDataModule
from seqlit.data.synthetic import SyntheticDataModule
from seqlit.data.text import TextDataModule
from seqlit.data.timeseries import TimeSeriesDataModule

__all__ = [
    "CorpusDataModule",
    "SeriesDataModule",
    "SineDataModule",
    "SyntheticDataModule",
    "TextDataModule",
    "TimeSeriesDataModule",
]
