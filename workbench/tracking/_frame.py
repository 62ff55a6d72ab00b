"""Make a results DataFrame safe for JSON (MLflow tables) and for DuckDB.

Per-question results carry lists (retrieved ids), dicts (guard verdicts) and gaps
(NaN/None where a stage did not run); both sinks choke on some of those.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_NESTED = (list, tuple, dict, set, frozenset)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        import pandas as pd

        return value is pd.NA or value is pd.NaT
    except ImportError:  # pragma: no cover - pandas is a core dependency
        return False


def _to_jsonable(value: Any) -> Any:
    """Recursively turn numpy scalars/arrays, sets and NaN into plain JSON values."""
    if _is_missing(value):
        return None
    if isinstance(value, dict):
        return {str(k): _to_jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return [_to_jsonable(v) for v in sorted(value, key=str)]
    if isinstance(value, list | tuple):
        return [_to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _to_jsonable(value.tolist())
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def dumps_cell(value: Any) -> str | None:
    """JSON text for a nested cell, None for a missing one, the value as text otherwise."""
    if _is_missing(value):
        return None
    return json.dumps(_to_jsonable(value), ensure_ascii=False, default=str)


def _nested_column(series: pd.Series) -> bool:
    return any(isinstance(v, _NESTED) or (hasattr(v, "ndim") and getattr(v, "ndim", 0) > 0) for v in series)


def serialise_nested(df: pd.DataFrame) -> pd.DataFrame:
    """A copy whose list/dict/array cells are JSON strings; column names become strings."""
    out = df.copy()
    out.columns = [str(c) for c in out.columns]
    for col in out.columns:
        if out[col].dtype == object and _nested_column(out[col]):
            out[col] = out[col].map(dumps_cell).astype(object)
    return out


def json_safe_table(df: pd.DataFrame) -> pd.DataFrame:
    """A copy fit for `mlflow.log_table`: nested cells as JSON text, no NaN/NaT, plain Python scalars.

    Every column becomes `object` dtype holding str/int/float/bool/None, which pandas
    serialises as valid JSON (NaN would be written as a bare `NaN` token otherwise).
    """
    import pandas as pd

    out = serialise_nested(df)
    for col in out.columns:
        series = out[col]
        if pd.api.types.is_datetime64_any_dtype(series) or pd.api.types.is_timedelta64_dtype(series):
            series = series.astype(str).where(series.notna(), None)
        out[col] = pd.Series([_to_jsonable(v) for v in series], index=out.index, dtype=object)
    return out.reset_index(drop=True)
