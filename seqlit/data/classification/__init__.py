"""Sequence classification data held in memory: a shared base, the synthetic tasks with a known best accuracy,
and your own sequences from an ``.npz`` file."""
