"""The value checks every config group shares, and the one message shape they fail with:
`key=value is not allowed; accepted: ...` (a ConfigError, raised before any training).

YAML and Hydra's override grammar both read `true` as a bool, and Python's bool is an int: every
"an integer" or "a number" here rejects bools, so `train.epochs=true` is an error, not 1 epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real
from typing import Any

from src.errors import ConfigError


def is_int(value: Any) -> bool:
    """An integer, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """A real number (an int or a float), not a bool; NaN and infinities included."""
    return isinstance(value, Real) and not isinstance(value, bool)


def refuse(key: str, value: Any, accepted: str) -> ConfigError:
    """The one-line error of a bad value: `key=value is not allowed; accepted: ...`."""
    return ConfigError(f"{key}={value!r} is not allowed; accepted: {accepted}")


def check_int(key: str, value: Any, low: int) -> int:
    """`value`, an integer >= `low`; else a ConfigError naming `key`."""
    if not is_int(value) or value < low:
        raise refuse(key, value, f"an integer >= {low}")
    return value


def check_positive(key: str, value: Any, accepted: str = "a number > 0") -> float:
    """`value`, a finite or infinite number > 0 (NaN refused); else a ConfigError naming `key`."""
    if not is_number(value) or not value > 0:
        raise refuse(key, value, accepted)
    return value


def check_bool(key: str, value: Any) -> bool:
    """`value`, true or false (not 0 or 1, not the string 'true')."""
    if not isinstance(value, bool):
        raise refuse(key, value, "true, false")
    return value


def check_choice(key: str, value: Any, accepted: Iterable[str], verb: str = "allowed") -> str:
    """`value`, one of the strings `accepted`; else `key=value is not <verb>; accepted: a, b`."""
    accepted = tuple(accepted)
    if not isinstance(value, str) or value not in accepted:
        raise ConfigError(f"{key}={value!r} is not {verb}; accepted: {', '.join(accepted)}")
    return value


def finite(value: Any) -> bool:
    """A number that is neither NaN nor infinite."""
    return is_number(value) and math.isfinite(value)
