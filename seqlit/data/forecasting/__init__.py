"""Forecasting data: a base for any numeric series (windows, chronological spans, scaling), reference forecasts,
the noisy sine wave and CSV files."""
