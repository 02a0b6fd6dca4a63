"""The ``--space`` grammar of ``seqlit sweep``: one config key and the values a search may give it.

``"model.hidden_size: [32, 64, 128]"`` is a choice among listed values; ``uniform(a, b)`` and ``loguniform(a, b)``
are floats (the latter even on a log scale, for learning rates and weight decay); ``int(a, b)`` is an integer in
[a, b] and ``logint(a, b)`` the same on a log scale. A sampled value becomes an ordinary command-line flag
(``--model.hidden_size 64``) of a ``seqlit fit`` run, so any key that ``fit`` takes can be searched. This module has
no Optuna import: parsing and checking a spec must work (and fail clearly) before Optuna is needed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from seqlit.errors import InputError

KINDS = ("choice", "uniform", "loguniform", "int", "logint")
_ALLOWED = (
    "'key: [a, b, ...]' (a choice), 'key: uniform(low, high)', 'key: loguniform(low, high)', "
    "'key: int(low, high)' or 'key: logint(low, high)', where key is a config key such as model.lr"
)
_KEY = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")
_CALL = re.compile(r"^(\w+)\s*\((.*)\)$")


@dataclass(frozen=True)
class Dimension:
    """One searched config key: ``kind`` is one of :data:`KINDS`; ``values`` the choices or the (low, high) bounds."""

    key: str
    kind: str
    values: tuple[Any, ...]

    def sample(self, trial: Any) -> Any:
        """Draw this key's value for an Optuna trial (Optuna names the parameter after the config key)."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.values))
        low, high = self.values
        if self.kind in ("int", "logint"):
            return trial.suggest_int(self.key, low, high, log=self.kind == "logint")
        return trial.suggest_float(self.key, low, high, log=self.kind == "loguniform")

    def first(self) -> Any:
        """A value from the space, used to check the key against the config before any trial runs."""
        return self.values[0]


def parse_dimension(spec: str) -> Dimension:
    """Read one ``--space`` spec; anything malformed is an :class:`InputError` that quotes it and shows the grammar."""

    def bad(why: str) -> InputError:
        return InputError(f"--space {spec!r} is not allowed: {why}; use {_ALLOWED}")

    key, sep, rhs = spec.partition(":")
    key, rhs = key.strip().removeprefix("--"), rhs.strip()
    if not sep or not rhs:
        raise bad("it needs 'key: values'")
    if not _KEY.match(key):
        raise bad(f"{key!r} is not a dotted config key")
    if rhs.startswith("["):
        try:
            values = yaml.safe_load(rhs)
        except yaml.YAMLError:
            raise bad("the list does not parse") from None
        if not isinstance(values, list) or not values:
            raise bad("a choice needs a non-empty list")
        if not all(v is None or isinstance(v, (bool, int, float, str)) for v in values):
            raise bad("choices must be numbers, strings, true/false or null")
        if len(set(map(repr, values))) != len(values):
            raise bad("a choice lists a value twice")
        return Dimension(key, "choice", tuple(values))
    call = _CALL.match(rhs)
    if not call or call.group(1) not in KINDS[1:]:
        raise bad(f"{rhs!r} is not a list or one of uniform, loguniform, int, logint")
    kind, args = call.group(1), [a.strip() for a in call.group(2).split(",")]
    try:
        bounds = [float(a) for a in args]
    except ValueError:
        raise bad(f"the bounds of {kind} must be numbers") from None
    if len(bounds) != 2 or not all(math.isfinite(b) for b in bounds) or not bounds[0] < bounds[1]:
        raise bad(f"{kind} needs two finite bounds, low < high")
    if kind in ("int", "logint"):
        if not all(b.is_integer() for b in bounds):
            raise bad(f"{kind} needs whole-number bounds")
        bounds = [int(b) for b in bounds]
    if kind.startswith("log") and bounds[0] <= 0:
        raise bad(f"{kind} needs bounds > 0")
    return Dimension(key, kind, tuple(bounds))


def parse_space(specs: list[str]) -> list[Dimension]:
    """All ``--space`` specs; a key searched twice is an error."""
    dims = [parse_dimension(s) for s in specs]
    keys = [d.key for d in dims]
    for key in keys:
        if keys.count(key) > 1:
            raise InputError(f"--space {key!r} is given {keys.count(key)} times: give each key once")
    return dims


def as_flag_value(value: Any) -> str:
    """A sampled value as the command line writes it (``true``, ``null``, ``0.001``), for jsonargparse to read."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, str) else repr(value)


def as_flags(params: dict[str, Any]) -> list[str]:
    """``{"model.lr": 0.01}`` → ``["--model.lr", "0.01"]``."""
    return [arg for key, value in params.items() for arg in (f"--{key}", as_flag_value(value))]
