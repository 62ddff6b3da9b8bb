"""Issue 16 findings: timestamps read right in every format, bars validated in every path, strict
integer params, periods per year from the bar spacing and market calendar, Sharpe checked against
an independent computation on hourly and monthly data."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from backend.domain.backtest import BacktestConfig, load_ohlcv_csv, run_backtest
from backend.domain.backtest.annualise import infer
from backend.domain.errors import ValidationFailed
from backend.domain.strategies import StrategyFactory

GOOG = Path(__file__).resolve().parents[2] / "data" / "GOOG.csv"
ROW = "1,2,0.5,1.5"


def _goog_rows(n: int) -> list[list[str]]:
    lines = GOOG.read_text().splitlines()[1 : n + 1]
    return [line.split(",") for line in lines]


def _csv(header: str, stamps: list[str]) -> bytes:
    return (header + "\n" + "\n".join(f"{s},{ROW}" for s in stamps) + "\n").encode()


def test_yyyymmdd_dates_give_the_same_cagr_as_iso() -> None:
    rows = _goog_rows(110)
    iso = "date,open,high,low,close\n" + "\n".join(",".join(r[:5]) for r in rows)
    compact = "date,open,high,low,close\n" + "\n".join(
        ",".join([r[0].replace("-", ""), *r[1:5]]) for r in rows
    )
    a, b = load_ohlcv_csv(iso.encode()), load_ohlcv_csv(compact.encode())
    np.testing.assert_array_equal(a["time"], b["time"])
    target = np.ones(110)
    ra = run_backtest(a, target=target, fractional=True)
    rb = run_backtest(b, target=target, fractional=True)
    # 110 daily bars span ~5 months: CAGR is a plain-sized number, never the ~0 of a 20-million-year span
    years = (np.datetime64(rows[-1][0]) - np.datetime64(rows[0][0])) / np.timedelta64(1, "D") / 365.25
    expected = (ra.equity[-1] / ra.equity[0]) ** (1 / years) - 1
    assert ra.metrics["cagr"] == pytest.approx(expected, rel=1e-12)
    assert rb.metrics["cagr"] == pytest.approx(expected, rel=1e-12)
    assert abs(expected) > 0.05


@pytest.mark.parametrize(
    "header,stamps",
    [
        ("Gmt time,Open,High,Low,Close", ["02.01.2024 09:15:00.000", "02.01.2024 10:15:00.000"]),
        ("open_time,open,high,low,close", ["1704186900000", "1704190500000"]),
        ("timestamp,open,high,low,close", ["1704186900", "1704190500"]),
        ("Date,Time,Open,High,Low,Close", ["2024-01-02,09:15:00", "2024-01-02,10:15:00"]),
        ("datetime,open,high,low,close", ["2024-01-02T14:45:00+05:30", "2024-01-02T15:45:00+05:30"]),
        ("date,open,high,low,close", ["2024/01/02 09:15", "2024/01/02 10:15"]),
        ("time,open,high,low,close", ["20240102091500", "20240102101500"]),
    ],
)
def test_timestamp_formats_and_column_names_are_detected(header: str, stamps: list[str]) -> None:
    d = load_ohlcv_csv(_csv(header, stamps))
    np.testing.assert_array_equal(
        d["time"], np.array(["2024-01-02T09:15", "2024-01-02T10:15"], dtype="datetime64[ns]")
    )


def test_day_first_dates_in_order_are_not_refused() -> None:
    d = load_ohlcv_csv(_csv("date,open,high,low,close", ["30-01-2024", "31-01-2024", "01-02-2024"]))
    assert [str(t)[:10] for t in d["time"]] == ["2024-01-30", "2024-01-31", "2024-02-01"]
    # month-first is recognised when a middle field exceeds 12
    d = load_ohlcv_csv(_csv("date,open,high,low,close", ["01/30/2024", "01/31/2024"]))
    assert str(d["time"][0])[:10] == "2024-01-30"


def test_ambiguous_and_unparseable_columns_are_named() -> None:
    with pytest.raises(ValidationFailed) as exc:
        load_ohlcv_csv(_csv("date,open,high,low,close", ["01/02/2024", "02/03/2024"]))
    info = exc.value.details["time"]
    assert exc.value.code == "BAD_TIMESTAMP" and info["column"] == "date" and info["sample"] == "01/02/2024"
    assert info["formats_tried"] == ["dd-mm-yyyy", "mm-dd-yyyy"] and "ambiguous" in info["message"]
    # the caller settles it
    d = load_ohlcv_csv(
        _csv("date,open,high,low,close", ["01/02/2024", "02/03/2024"]), time_format="mm-dd-yyyy"
    )
    assert str(d["time"][1])[:10] == "2024-02-03"
    with pytest.raises(ValidationFailed) as exc:
        load_ohlcv_csv(_csv("Gmt time,open,high,low,close", ["yesterday", "today"]))
    assert (
        exc.value.details["time"]["column"] == "Gmt time"
        and exc.value.details["time"]["sample"] == "yesterday"
    )


def test_year_out_of_range_is_an_error_not_a_wrap() -> None:
    with pytest.raises(ValidationFailed) as exc:
        load_ohlcv_csv(_csv("date,open,high,low,close", ["30240102", "30240103"]))
    assert exc.value.code == "BAD_TIMESTAMP" and "3024" in exc.value.message
    with pytest.raises(ValidationFailed):  # epoch nanoseconds taken as seconds would land in year 50,000+
        run_backtest(
            {
                "open": [1, 1],
                "high": [1, 1],
                "low": [1, 1],
                "close": [1, 1],
                "time": ["0001-01-01", "0001-01-02"],
            },
            target=np.ones(2),
        )


def test_python_api_validates_its_arrays() -> None:
    d = load_ohlcv_csv(GOOG)
    strategy = StrategyFactory.create("sma_crossover", {"fast": 10, "slow": 20})
    close = d["close"].copy()
    close[500] = np.nan
    with pytest.raises(ValidationFailed) as exc:
        run_backtest({**d, "close": close}, strategy, commission=0.002)
    assert exc.value.details["rows"] == [
        {"bar": 500, "column": "close", "message": "not a finite number (NaN or inf)"}
    ]
    high = d["high"].copy()
    high[7] = min(d["open"][7], d["close"][7]) * 0.999  # above the low, below open and close
    with pytest.raises(ValidationFailed) as exc:
        run_backtest({**d, "high": high}, strategy)
    assert exc.value.details["rows"][0] == {
        "bar": 7,
        "column": "high",
        "message": "high is below open or close",
    }
    low = d["low"].copy()
    low[9] = -1.0
    with pytest.raises(ValidationFailed) as exc:
        run_backtest({**d, "low": low}, strategy)
    assert {"bar": 9, "column": "low", "message": "price must be positive"} in exc.value.details["rows"]
    # the same checks on a CSV name the file's line
    bad = b"date,open,high,low,close\n2024-01-01,10,11,9,10\n2024-01-02,10,9.5,9,10\n"
    with pytest.raises(ValidationFailed) as exc:
        load_ohlcv_csv(bad)
    assert exc.value.details["rows"] == [
        {"row": 3, "column": "high", "message": "high is below open or close"}
    ]


def test_integer_params_are_strict() -> None:
    with pytest.raises(ValidationFailed) as exc:
        StrategyFactory.create("sma_crossover", {"fast": 10.5, "slow": 20})
    assert "fast" in exc.value.details
    with pytest.raises(ValidationFailed):
        StrategyFactory.create("rsi_mean_reversion", {"period": "14"})


def _stamps(start: str, step: str, n: int, weekdays_only: bool = False) -> np.ndarray:
    t = np.datetime64(start) + np.arange(n * 2) * np.timedelta64(1, step)
    t = t.astype("datetime64[s]")
    if weekdays_only:
        wd = (t.astype("datetime64[D]").astype(np.int64) + 3) % 7
        t = t[wd < 5]
    return t[:n]


def test_periods_per_year_from_spacing_and_calendar() -> None:
    nse_days = _stamps("2024-01-01", "D", 300, weekdays_only=True)
    assert infer(nse_days).periods_per_year == 252 and infer(nse_days).market == "nse"
    nse_minutes = np.concatenate(
        [np.datetime64(f"2024-01-0{d}T03:45") + np.arange(375) * np.timedelta64(1, "m") for d in (1, 2, 3)]
    )
    assert infer(nse_minutes).periods_per_year == 375 * 252
    assert infer(_stamps("2024-01-01", "D", 400)).periods_per_year == 365  # crypto: weekends trade
    fx_hours = _stamps("2024-01-01T00:00", "h", 2000, weekdays_only=True)
    fx = infer(fx_hours)
    assert (fx.market, fx.periods_per_year) == ("fx", 24 * 260)
    months = np.array(
        [f"20{y:02d}-{m:02d}-01" for y in range(18, 24) for m in range(1, 13)], dtype="datetime64[s]"
    )
    assert infer(months).periods_per_year == 12
    assert (
        infer(months, override=52).periods_per_year == 52 and infer(months, override=52).basis == "override"
    )
    assert infer(None).basis == "default"


def _walk(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    return {
        "open": open_,
        "high": np.maximum(open_, close) * 1.001,
        "low": np.minimum(open_, close) * 0.999,
        "close": close,
    }


@pytest.mark.parametrize("kind,expected_ppy", [("hourly_fx", 24 * 260), ("monthly_crypto", 12)])
def test_sharpe_matches_an_independent_computation(kind: str, expected_ppy: int) -> None:
    if kind == "hourly_fx":
        times = _stamps("2023-01-02T00:00", "h", 3000, weekdays_only=True)
    else:
        times = np.array(
            [f"20{y:02d}-{m:02d}-01" for y in range(14, 24) for m in range(1, 13)], dtype="datetime64[s]"
        )
    bars = {**_walk(times.size, 7), "time": times}
    target = np.where(np.arange(times.size) % 40 < 25, 1.0, 0.0)
    res = run_backtest(bars, target=target, fractional=True, commission=0.001, risk_free=0.05)
    assert res.metrics["periods_per_year"] == expected_ppy
    eq = res.equity.tolist()
    rets = [eq[i] / eq[i - 1] - 1 for i in range(1, len(eq))]
    rf = (1.05) ** (1 / expected_ppy) - 1
    excess = [r - rf for r in rets]
    independent = statistics.mean(excess) / statistics.stdev(excess) * math.sqrt(expected_ppy)
    assert res.metrics["sharpe"] == pytest.approx(independent, rel=1e-9)
    assert res.metrics["annual_volatility"] == pytest.approx(statistics.stdev(rets) * math.sqrt(expected_ppy))
    # the old fixed 252 would have been off by sqrt(ppy / 252)
    old = run_backtest(
        bars, target=target, fractional=True, commission=0.001, risk_free=0.05, periods_per_year=252
    )
    assert old.metrics["sharpe"] != pytest.approx(independent, rel=1e-3)


def test_config_rejects_unknown_market() -> None:
    with pytest.raises(ValidationFailed) as exc:
        BacktestConfig(market="moon").validate()
    assert "market" in exc.value.details
