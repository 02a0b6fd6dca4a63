"""Sequence classification data: the synthetic tasks with a known best accuracy."""
