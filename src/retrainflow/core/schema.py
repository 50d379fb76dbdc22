"""What "the schema" of a data window is, and how two schemas differ.

Used by the pull stage (schema change vs the champion forces a stateless fit),
the monitoring check (a schema change is reported and forces stateless) and the
backtest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def schema_of(frame: pd.DataFrame) -> dict[str, str]:
    """Column -> dtype name; what 'the schema' means for change detection."""
    return {str(c): str(t) for c, t in frame.dtypes.items()}


def schema_diff(old: dict[str, str] | None, new: dict[str, str]) -> dict[str, Any] | None:
    """Added, removed and retyped columns, or None when the schemas match (or ``old`` is unknown)."""
    if old is None:
        return None
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    retyped = {c: [old[c], new[c]] for c in sorted(set(old) & set(new)) if old[c] != new[c]}
    if not (added or removed or retyped):
        return None
    return {"added": added, "removed": removed, "retyped": retyped}
