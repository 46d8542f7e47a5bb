"""JSON that is always valid JSON: NaN and infinities (which ``json.dumps`` writes as the non-JSON ``NaN`` and
``Infinity``) become ``null``; numpy scalars and arrays become numbers and lists."""

from __future__ import annotations

import json
import math
from typing import Any


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by None (recursively through dicts, lists and tuples)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    tolist = getattr(obj, "tolist", None)  # numpy scalars and arrays, without importing numpy
    if callable(tolist) and type(obj).__module__ == "numpy":
        return finite(tolist())
    return obj


def dumps(obj: Any, **kw) -> str:
    """``json.dumps`` of :func:`finite` ``obj``, refusing (ValueError) anything that would not be valid JSON."""
    return json.dumps(finite(obj), allow_nan=False, **kw)
