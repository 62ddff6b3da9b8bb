"""One loader for OHLCV bars: CSV uploads, stored candles and the Python API (no pandas).

* :func:`load_ohlcv_csv` reads CSV text/bytes, a path or a binary file object: a header row, the
  columns ``open, high, low, close`` (case-insensitive) plus optional ``volume``, and a timestamp
  column found by name (``backend.domain.backtest.timestamps.TIME_NAMES``: ``date``, ``datetime``,
  ``time``, ``timestamp``, ``Gmt time``, ``open_time``, an unnamed first column ...) or split into
  ``date`` + ``time`` columns. The format is detected (see ``timestamps``).
* :func:`load_ohlcv` normalises a mapping of arrays (the Python API and the candle store) the same
  way: timestamps parsed by the same code, bars validated by the same :func:`validate_bars`.

Every path ends in :func:`validate_bars`: finite values, positive prices, non-negative volume,
``high >= max(open, close)``, ``low <= min(open, close)`` and strictly increasing timestamps; each
problem names the row (CSV: line number in the file; arrays: 0-based bar index) and the column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from backend.domain.backtest.timestamps import find_time_columns, looks_like_time_of_day, parse_times
from backend.domain.errors import ValidationFailed

MAX_CSV_BYTES = 20 * 1024 * 1024
MAX_ERRORS = 20
REQUIRED = ("open", "high", "low", "close")
PRICE_COLUMNS = REQUIRED
CsvSource = str | Path | bytes | IO[bytes]


def _too_large(max_bytes: int) -> ValidationFailed:
    return ValidationFailed(
        f"CSV larger than {max_bytes} bytes",
        details={"file": [f"at most {max_bytes} bytes"]},
        code="CSV_TOO_LARGE",
    )


def _open_binary(source: CsvSource, max_bytes: int | None) -> IO[bytes]:
    if isinstance(source, bytes):
        if max_bytes is not None and len(source) > max_bytes:
            raise _too_large(max_bytes)
        return io.BytesIO(source)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if max_bytes is not None and path.stat().st_size > max_bytes:
            raise _too_large(max_bytes)
        return path.open("rb")
    if max_bytes is not None and source.seekable():
        here = source.tell()
        size = source.seek(0, io.SEEK_END) - here
        source.seek(here)
        if size > max_bytes:
            raise _too_large(max_bytes)
    return source


def load_ohlcv_csv(
    source: CsvSource,
    max_bytes: int | None = MAX_CSV_BYTES,
    *,
    time_column: str | None = None,
    time_format: str | None = None,
) -> dict[str, np.ndarray]:
    """Parse OHLCV CSV into float64 arrays (``time`` as ``datetime64[ns]`` when a column is found).

    Raises :class:`ValidationFailed`: a missing column as ``{column: ["required column missing"]}``;
    bad rows as ``details["rows"] = [{"row": line number, "column": name, "message": ...}]`` (at
    most 20); an unparseable or ambiguous timestamp column with ``code="BAD_TIMESTAMP"`` naming the
    column, a sample and the formats tried. ``time_column`` / ``time_format`` override detection.
    """
    raw = _open_binary(source, max_bytes)
    try:
        try:
            header_line = raw.readline().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationFailed("CSV is not UTF-8 text", details={"file": ["not UTF-8"]}) from None
        header = next(csv.reader([header_line]), None)
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
        if time_column is not None:
            if time_column.strip().lower() not in names:
                raise ValidationFailed(
                    f"time column {time_column!r} not in the header",
                    details={"time_column": [f"not one of {', '.join(header)}"]},
                )
            t_idx, tod_idx = names.index(time_column.strip().lower()), None
        else:
            t_idx, tod_idx = find_time_columns(names)
            if t_idx is not None and t_idx in col.values():
                t_idx = None
        body_start = raw.tell() if raw.seekable() else None
        fast = _read_fast(raw, header, col, t_idx, tod_idx)
        if fast is None:
            if body_start is None:
                raise ValidationFailed("CSV could not be parsed", details={"file": ["unreadable rows"]})
            raw.seek(body_start)
            text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            try:
                values, times, tod, lines = _read_slow(text, header, col, t_idx, tod_idx)
            finally:
                text.detach()  # leave the binary stream to the caller (closed below for a path)
        else:
            values, times, tod = fast
            lines = None
    finally:
        if isinstance(source, (str, Path)):
            raw.close()
    n = values["close"].size
    if n < 2:
        raise ValidationFailed("CSV needs at least 2 data rows", details={"file": ["fewer than 2 rows"]})
    out = dict(values)
    if t_idx is not None:
        col_name = header[t_idx].strip() or "date"
        if tod is not None and looks_like_time_of_day(tod):
            out["time"] = parse_times(times, col_name, time_format, time_of_day=tod)
        else:
            out["time"] = parse_times(times, col_name, time_format)
    rows = lines if lines is not None else np.arange(2, n + 2)
    validate_bars(
        out, rows=rows, row_key="row", time_name=header[t_idx].strip() if t_idx is not None else "time"
    )
    return out


def _read_fast(
    raw: IO[bytes], header: list[str], col: dict[str, int], t_idx: int | None, tod_idx: int | None
) -> tuple[dict[str, np.ndarray], np.ndarray | None, np.ndarray | None] | None:
    """One multithreaded C++ pass (pyarrow's CSV reader) for clean files; ``None`` on anything
    unusual (a ragged or blank line, a value that is not a number, a newline inside quotes), and
    the row-by-row reader then names the bad rows with their line numbers.

    Numbers are read as float64 with no null markers (an empty field is not silently NaN); the
    timestamp columns as text, handed to the same detector (``timestamps.parse_times``) as every
    other path. One line per row is enforced, so bar ``i`` is line ``i + 2`` of the file.
    """
    import pyarrow as pa  # imported on first upload: keeps it out of the app's start-up
    import pyarrow.csv as pa_csv

    names = [f"c{i}" for i in range(len(header))]
    types = {names[i]: pa.float64() for i in col.values()}
    text_cols = [i for i in (t_idx, tod_idx) if i is not None]
    types.update({names[i]: pa.string() for i in text_cols})
    include = [names[i] for i in sorted({*col.values(), *text_cols})]
    try:
        table = pa_csv.read_csv(
            raw,
            read_options=pa_csv.ReadOptions(column_names=names, block_size=4 << 20),
            parse_options=pa_csv.ParseOptions(ignore_empty_lines=False, newlines_in_values=False),
            convert_options=pa_csv.ConvertOptions(
                column_types=types,
                include_columns=include,
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, UnicodeDecodeError):
        return None
    values = {name: _writable(table.column(names[i]).to_numpy()) for name, i in col.items()}
    times = _text_column(table.column(names[t_idx])) if t_idx is not None else None
    tod = _text_column(table.column(names[tod_idx])).astype(str) if tod_idx is not None else None
    return values, times, tod


def _writable(a: np.ndarray) -> np.ndarray:
    # arrow hands out read-only views of its buffers; callers get ordinary arrays, as from every path
    return a if a.flags.writeable else a.copy()


def _text_column(column: Any) -> np.ndarray:
    """An arrow string column as numpy: zero-copy fixed-width ``S`` bytes when every value is
    plain ASCII of one length (ISO timestamps, the common case), else ``str`` values."""
    arr = column.combine_chunks()
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset : arr.offset + n + 1]
    if n:
        lengths = np.diff(offsets)
        width = int(lengths[0])
        if width and lengths.min() == width == lengths.max():
            data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
            if data.max() < 128:
                return data.view(f"S{width}")
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=str)


def _read_slow(
    text: IO[str], header: list[str], col: dict[str, int], t_idx: int | None, tod_idx: int | None
) -> tuple[dict[str, np.ndarray], np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Row-by-row reader that names every bad row (line number in the file) and column."""
    errors: list[dict[str, Any]] = []
    values: dict[str, list[float]] = {c: [] for c in col}
    times: list[str] = []
    tods: list[str] = []
    lines: list[int] = []
    try:
        for line_no, row in enumerate(csv.reader(text), start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                errors.append(
                    {
                        "row": line_no,
                        "column": None,
                        "message": f"expected {len(header)} fields, got {len(row)}",
                    }
                )
            else:
                parsed: dict[str, float] = {}
                for name, i in col.items():
                    try:
                        parsed[name] = float(row[i])
                    except ValueError:
                        errors.append(
                            {"row": line_no, "column": name, "message": f"not a number: {row[i]!r}"}
                        )
                if len(parsed) == len(col):
                    for name, v in parsed.items():
                        values[name].append(v)
                    if t_idx is not None:
                        times.append(row[t_idx].strip())
                    if tod_idx is not None:
                        tods.append(row[tod_idx].strip())
                    lines.append(line_no)
            if len(errors) >= MAX_ERRORS:
                break
    except UnicodeDecodeError:
        raise ValidationFailed("CSV is not UTF-8 text", details={"file": ["not UTF-8"]}) from None
    arrays = {name: np.asarray(v, dtype=np.float64) for name, v in values.items()}
    if errors:
        # also name the bad values among the rows that did parse, so one round trip shows all
        if arrays["close"].size:
            try:
                validate_bars(arrays, rows=np.asarray(lines), row_key="row")
            except ValidationFailed as exc:
                errors.extend(exc.details["rows"])
        errors = sorted(errors, key=lambda e: e["row"])[:MAX_ERRORS]
        raise ValidationFailed(f"CSV has {len(errors)} bad row(s)", details={"rows": errors})
    return (
        arrays,
        np.asarray(times) if t_idx is not None else None,
        np.asarray(tods) if tod_idx is not None else None,
        np.asarray(lines),
    )


def validate_bars(
    bars: Mapping[str, np.ndarray],
    *,
    rows: np.ndarray | None = None,
    row_key: str = "bar",
    time_name: str = "time",
) -> None:
    """Raise ``ValidationFailed`` listing bad bars (at most 20), each ``{row_key, column, message}``.

    Checks: no NaN/inf, prices > 0, volume >= 0, ``high >= max(open, close)``,
    ``low <= min(open, close)``, and strictly increasing ``time`` when present. ``rows`` maps a bar
    index to what the caller shows (CSV line numbers); by default the 0-based bar index.
    """
    o, h, lo, c = (np.asarray(bars[k], dtype=np.float64) for k in REQUIRED)
    if _all_valid(o, h, lo, c, bars.get("volume"), bars.get("time")):
        return
    problems: list[tuple[int, str, str]] = []

    def add(mask: np.ndarray, column: str, message: str) -> None:
        for i in np.flatnonzero(mask)[:MAX_ERRORS].tolist():
            problems.append((i, column, message))

    for name, arr in (("open", o), ("high", h), ("low", lo), ("close", c)):
        finite = np.isfinite(arr)
        if not finite.all():
            add(~finite, name, "not a finite number (NaN or inf)")
        with np.errstate(invalid="ignore"):
            nonpos = finite & (arr <= 0)
        if nonpos.any():
            add(nonpos, name, "price must be positive")
    if "volume" in bars:
        v = np.asarray(bars["volume"], dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad_v = ~np.isfinite(v) | (v < 0)
        if bad_v.any():
            add(bad_v, "volume", "volume must be a finite number >= 0")
    with np.errstate(invalid="ignore"):
        add(h < np.maximum(o, c), "high", "high is below open or close")
        add(lo > np.minimum(o, c), "low", "low is above open or close")
    t = bars.get("time")
    if t is not None and np.asarray(t).size > 1:
        t = np.asarray(t)
        not_after = ~(t[1:] > t[:-1])
        if not_after.any():
            add(np.concatenate(([False], not_after)), time_name, "time is not after the previous row")
    if not problems:
        return
    problems.sort()
    shown = problems[:MAX_ERRORS]
    total = len(problems)
    label = (lambda i: int(rows[i])) if rows is not None else int
    raise ValidationFailed(
        f"{total if total < MAX_ERRORS else f'at least {total}'} bad bar(s)",
        details={"rows": [{row_key: label(i), "column": col, "message": msg} for i, col, msg in shown]},
    )


def _all_valid(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: Any, t: Any) -> bool:
    """The common case in one pass over cache-sized blocks (NaN fails every comparison); any doubt
    -> the full diagnosis in :func:`validate_bars`, which names the bad rows.

    Once every ``high >= max(open, close)`` and ``low <= min(open, close)`` holds (no NaN can pass
    those), every price lies between the smallest low and the largest high, so "all four columns
    finite and positive" is ``min(low) > 0`` and ``max(high) < inf``.
    """
    n = c.size
    if not n:
        return False
    ticks = None
    if t is not None:
        t = np.asarray(t)
        if t.size > 1 and t.dtype.kind == "M":
            ticks = t.view(np.int64)
            # NaT is the smallest int64, so as an integer it fails "after the previous row"
            # anywhere but at row 0, where datetime comparison would still refuse it
            if ticks[0] == np.iinfo(np.int64).min:
                return False
        elif t.size > 1 and not np.all(t[1:] > t[:-1]):
            return False
    block = 1 << 15
    tmp = np.empty(min(block, n))
    low_min, high_max = np.inf, -np.inf
    with np.errstate(invalid="ignore"):
        for s in range(0, n, block):
            e = min(s + block, n)
            ob, hb, lb, cb = o[s:e], h[s:e], lo[s:e], c[s:e]
            m = tmp[: e - s]
            np.maximum(ob, cb, out=m)
            if not np.all(hb >= m):
                return False
            np.minimum(ob, cb, out=m)
            if not np.all(lb <= m):
                return False
            low_min = min(low_min, lb.min())
            high_max = max(high_max, hb.max())
            if ticks is not None and not np.all(ticks[s + 1 : e + 1] > ticks[s : min(e, n - 1)]):
                return False
        if not (low_min > 0 and high_max < np.inf):
            return False
        if v is not None:
            v = np.asarray(v, dtype=np.float64)
            if v.size and not (v.min() >= 0 and v.max() < np.inf):
                return False
    return True


def load_ohlcv(
    data: Mapping[str, Any], *, time_format: str | None = None, validate: bool = True
) -> dict[str, np.ndarray]:
    """Normalise a mapping of OHLCV arrays (keys case-insensitive) and validate it.

    Timestamps under ``time`` / ``date`` / ``datetime`` / ``timestamp`` (or any name the CSV
    loader recognises) may be ``datetime64``, strings or epoch numbers; they are parsed with the
    same detector as CSV columns. Returns float64 arrays plus ``time`` (``datetime64[ns]``).
    """
    lowered = {str(k).strip().lower(): k for k in data}
    missing = [k for k in REQUIRED if k not in lowered]
    if missing:
        raise ValidationFailed("OHLC data incomplete", details={k: ["required"] for k in missing})
    out: dict[str, np.ndarray] = {}
    for name in (*REQUIRED, "volume"):
        if name in lowered and data[lowered[name]] is not None:
            try:
                arr = np.asarray(data[lowered[name]], dtype=np.float64)
                out[name] = arr if arr.ndim == 1 else arr.ravel()  # the caller's array itself when 1-D
            except (TypeError, ValueError):
                raise ValidationFailed(
                    f"{name} is not numeric", details={name: ["must be an array of numbers"]}
                ) from None
    n = out["close"].size
    lens = {k: v.size for k, v in out.items()}
    if any(v != n for v in lens.values()) or n < 2:
        raise ValidationFailed(
            "OHLC arrays must have equal length >= 2", details={"bars": [f"lengths {lens}"]}
        )
    t_idx, tod_idx = find_time_columns(list(lowered))
    keys = list(lowered)
    if t_idx is not None and keys[t_idx] in (*REQUIRED, "volume"):
        t_idx = None
    if t_idx is not None and data[lowered[keys[t_idx]]] is not None:
        raw = data[lowered[keys[t_idx]]]
        tod = data[lowered[keys[tod_idx]]] if tod_idx is not None else None
        arr = np.asarray(raw)
        if arr.size != n:
            raise ValidationFailed(
                f"{keys[t_idx]} has {arr.size} values for {n} bars",
                details={keys[t_idx]: ["length mismatch"]},
            )
        if tod is not None and looks_like_time_of_day(np.asarray(tod)):
            out["time"] = parse_times(arr, keys[t_idx], time_format, time_of_day=np.asarray(tod))
        else:
            out["time"] = parse_times(arr, keys[t_idx], time_format)
    if validate:
        validate_bars(out)
    return out
