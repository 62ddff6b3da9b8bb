"""Validated CSV loader for OHLCV data (no pandas).

Accepted layout: a header row; a date/time column (named ``date``, ``time``, ``datetime``,
``timestamp`` or left unnamed as the first column, as pandas writes an index) and the columns
``open``, ``high``, ``low``, ``close`` (case-insensitive) plus optional ``volume``.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from backend.domain.errors import ValidationFailed

MAX_CSV_BYTES = 20 * 1024 * 1024
MAX_ERRORS = 20
REQUIRED = ("open", "high", "low", "close")
TIME_NAMES = ("date", "time", "datetime", "timestamp", "")


def load_ohlcv_csv(source: str | Path | bytes, max_bytes: int = MAX_CSV_BYTES) -> dict[str, np.ndarray]:
    """Parse OHLCV CSV text (``bytes``) or a file path into float64 arrays.

    Returns ``{"time": datetime64 array or absent, "open", "high", "low", "close", "volume"}``.
    Raises :class:`ValidationFailed` when the file is too large, a required column is missing,
    or rows are bad; ``details["rows"]`` lists up to 20 problems as
    ``{"row": <1-based line number in the file>, "column": name, "message": text}``.
    """
    if isinstance(source, bytes):
        raw = source
    else:
        path = Path(source)
        if path.stat().st_size > max_bytes:
            raise ValidationFailed(
                f"CSV larger than {max_bytes} bytes", details={"file": [f"at most {max_bytes} bytes"]}
            )
        raw = path.read_bytes()
    if len(raw) > max_bytes:
        raise ValidationFailed(
            f"CSV larger than {max_bytes} bytes", details={"file": [f"at most {max_bytes} bytes"]}
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("CSV is not UTF-8 text", details={"file": ["not UTF-8"]}) from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise ValidationFailed("CSV is empty", details={"file": ["no header row"]})
    names = [h.strip().lower() for h in header]
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ValidationFailed(
            f"CSV misses required columns: {', '.join(missing)}",
            details={c: ["required column missing"] for c in missing},
        )
    col = {c: names.index(c) for c in (*REQUIRED, "volume") if c in names}
    time_idx = next((names.index(t) for t in TIME_NAMES if t in names), None)

    errors: list[dict[str, Any]] = []
    values: dict[str, list[float]] = {c: [] for c in col}
    times: list[str] = []
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            errors.append(
                {"row": line_no, "column": None, "message": f"expected {len(header)} fields, got {len(row)}"}
            )
        else:
            parsed: dict[str, float] = {}
            for name, i in col.items():
                try:
                    v = float(row[i])
                    if not math.isfinite(v) or v < 0 or (v == 0 and name != "volume"):
                        raise ValueError
                    parsed[name] = v
                except ValueError:
                    errors.append(
                        {"row": line_no, "column": name, "message": f"not a positive number: {row[i]!r}"}
                    )
            if len(parsed) == len(col):
                if parsed["high"] < parsed["low"]:
                    errors.append({"row": line_no, "column": "high", "message": "high is below low"})
                for name, v in parsed.items():
                    values[name].append(v)
                if time_idx is not None:
                    times.append(row[time_idx].strip())
        if len(errors) >= MAX_ERRORS:
            break
    if errors:
        raise ValidationFailed(f"CSV has {len(errors)} bad row(s)", details={"rows": errors})
    n = len(values["close"])
    if n < 2:
        raise ValidationFailed("CSV needs at least 2 data rows", details={"file": ["fewer than 2 rows"]})
    out = {name: np.asarray(v, dtype=np.float64) for name, v in values.items()}
    if time_idx is not None:
        try:
            t = np.asarray(times, dtype="datetime64[ns]")
        except ValueError:
            bad = next(i for i, s in enumerate(times) if not _is_time(s))
            raise ValidationFailed(
                "CSV has an unparseable date",
                details={
                    "rows": [{"row": bad + 2, "column": header[time_idx] or "date", "message": "bad date"}]
                },
            ) from None
        if n > 1 and not np.all(t[1:] > t[:-1]):
            bad = int(np.argmax(~(t[1:] > t[:-1]))) + 3
            raise ValidationFailed(
                "CSV dates must be strictly increasing",
                details={
                    "rows": [
                        {
                            "row": bad,
                            "column": header[time_idx] or "date",
                            "message": "not after previous row",
                        }
                    ]
                },
            )
        out["time"] = t
    return out


def _is_time(s: str) -> bool:
    try:
        np.datetime64(s)
    except ValueError:
        return False
    return True
