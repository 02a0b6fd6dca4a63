"""seqlit: recurrent sequence models (RNN, LSTM, GRU and a from-scratch cell) trained with PyTorch Lightning.

The package is split the way the field's best codebases split it: plain ``nn.Module`` networks in
:mod:`seqlit.models`, LightningModules that own loss, metrics and optimizers in :mod:`seqlit.tasks`, and one
LightningDataModule per data source in :mod:`seqlit.data`. :mod:`seqlit.run.cli` ties them together behind ``seqlit``.
"""

__version__ = "0.1.0"
