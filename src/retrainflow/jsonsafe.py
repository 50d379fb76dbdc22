"""Plain-JSON values: the one sanitiser for manifests, reports, XCom, ledgers and ``--json``.

Results hold numpy and pandas scalars, NaN metrics (a ROC AUC on one class),
dates and paths; JSON (strict JSON, as read by browsers and ``jq``) has none of
these. :func:`json_safe` turns such a value into plain ``None`` / ``bool`` /
``int`` / ``float`` / ``str`` / ``list`` / ``dict`` — NaN and infinities become
``None`` — so ``json.dumps(json_safe(x), allow_nan=False)`` always works.
:func:`finite_or_none` is the same rule for one number.

Imports nothing heavy: numpy and pandas values are recognised by duck typing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, time
from pathlib import PurePath
from typing import Any


def finite_or_none(value: Any) -> float | None:
    """``value`` as a plain float, or ``None`` when it is ``None``, NaN or infinite.

    Raises:
        TypeError, ValueError: ``value`` is not a number.
    """
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON types, recursively.

    Mappings become dicts with string keys; lists, tuples, sets and arrays become
    lists; numpy scalars their Python value; NaN, infinities, ``NaT`` and ``pd.NA``
    ``None``; dates and times ISO strings; paths strings. Anything else becomes
    ``str(value)``.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):  # also numpy's float64
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, (datetime, date, time)):  # also pandas' Timestamp
        return None if _is_missing(value) else value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if type(value).__name__ in {"datetime64", "timedelta64"}:  # .item() may give int ns
        return None if _is_missing(value) else str(value)
    tolist = getattr(value, "tolist", None)  # numpy scalar or array
    if callable(tolist) and getattr(value, "shape", None) is not None:
        return json_safe(tolist())
    item = getattr(value, "item", None)  # other scalars with a Python value
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    if _is_missing(value):
        return None
    return str(value)


def _is_missing(value: Any) -> bool:
    """NaN-like: ``NaT``, ``pd.NA``, a NaN of any float type."""
    try:
        return bool(value != value)  # noqa: PLR0124
    except (TypeError, ValueError):  # pd.NA: "boolean value of NA is ambiguous"
        return type(value).__name__ == "NAType"
