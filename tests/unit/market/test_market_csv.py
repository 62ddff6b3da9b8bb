import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from backend.domain.errors import NotFound, ValidationFailed
from backend.domain.market.calendar import IST
from backend.domain.market.csv_provider import CsvProvider

DATA = Path(__file__).resolve().parents[2] / "data"
GOOG = DATA / "GOOG.csv" if (DATA / "GOOG.csv").is_file() else Path("/work/shared/data/GOOG.csv")


@pytest.fixture
def folder(tmp_path):
    shutil.copy(GOOG, tmp_path / "GOOG.csv")
    return tmp_path


def utc(*a):
    return datetime(*a, tzinfo=UTC)


def test_goog_daily_candles(folder):
    p = CsvProvider(folder)
    bars = p.candles("GOOG", "1d", utc(2004, 8, 1), utc(2004, 8, 31))
    assert bars[0].ts.astimezone(IST).date() == date(2004, 8, 19)
    first = bars[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        Decimal("100"),
        Decimal("104.06"),
        Decimal("95.96"),
        Decimal("100.34"),
        22351900,
    )
    assert [b.ts for b in bars] == sorted(b.ts for b in bars)
    with pytest.raises(ValidationFailed, match="daily data only"):
        p.candles("GOOG", "1m", utc(2004, 8, 1), utc(2004, 8, 2))


def test_quote_from_last_row_and_ticks_replay(folder):
    p = CsvProvider(folder)
    rows = (folder / "GOOG.csv").read_text().strip().splitlines()
    last, prev = rows[-1].split(","), rows[-2].split(",")
    q = p.quotes(["GOOG"])["GOOG"]
    assert q.ltp == Decimal(last[4]) and q.close == Decimal(prev[4]) and q.volume == int(last[5])
    assert p.ltp(["GOOG"]) == {"GOOG": Decimal(last[4])}
    now = utc(2025, 1, 1)
    ticks = [p.tick(["GOOG"], now)[0].ltp for _ in range(3)]
    assert ticks == [Decimal(r.split(",")[4]) for r in rows[1:4]]


def test_named_timestamp_column_and_intraday_aggregation(tmp_path):
    (tmp_path / "ABC.csv").write_text(
        "timestamp,open,high,low,close,volume\n"
        "2025-11-18T09:15:00+05:30,100,101,99.5,100.5,10\n"
        "2025-11-18T09:16:00+05:30,100.5,102,100,101.5,20\n"
        "2025-11-18T09:17:00+05:30,101.5,101.6,100.8,101,30\n"
    )
    p = CsvProvider(tmp_path)
    m1 = p.candles("ABC", "1m", utc(2025, 11, 18), utc(2025, 11, 19))
    assert len(m1) == 3 and m1[0].ts == utc(2025, 11, 18, 3, 45)
    (d,) = p.candles("ABC", "1d", utc(2025, 11, 18), utc(2025, 11, 19))
    assert (d.open, d.high, d.low, d.close, d.volume) == (
        Decimal(100),
        Decimal(102),
        Decimal("99.5"),
        Decimal(101),
        60,
    )


@pytest.mark.parametrize(
    "line, row, column",
    [
        ("2013-03-04,abc,1,1,1,100", 3, "Open"),
        ("2013-03-04,10,9,8,9.5,100", 3, "High"),
        ("2013-03-04,10,11,10.5,10.2,100", 3, "Low"),
        ("2013-03-04,10,11,9,10,12.5", 3, "Volume"),
        ("04/03/2013,10,11,9,10,100", 3, "date"),
        ("2013-03-01,10,11,9,10,100", 3, "date"),  # not after the previous row
        ("2013-03-04,10,11,9", 3, "Close"),
    ],
)
def test_bad_rows_name_row_and_column(tmp_path, line, row, column):
    (tmp_path / "BAD.csv").write_text(
        ",Open,High,Low,Close,Volume\n2013-03-01,10,11,9,10,100\n" + line + "\n"
    )
    with pytest.raises(ValidationFailed) as exc:
        CsvProvider(tmp_path).candles("BAD", "1d", utc(2013, 1, 1), utc(2013, 12, 31))
    assert exc.value.details["row"] == row and exc.value.details["column"] == column
    assert f"row {row}" in exc.value.message and "BAD.csv" in exc.value.message


def test_missing_column_and_missing_file(tmp_path):
    (tmp_path / "NOV.csv").write_text("Date,Open,High,Low,Close\n2013-03-01,10,11,9,10\n")
    p = CsvProvider(tmp_path)
    with pytest.raises(ValidationFailed) as exc:
        p.quotes(["NOV"])
    assert exc.value.details == {"file": "NOV.csv", "row": 1, "column": "Volume"}
    with pytest.raises(NotFound):
        p.quotes(["ZZZ"])
    with pytest.raises(ValidationFailed):
        p.quotes(["../etc/passwd"])


def test_options_not_supported(folder):
    with pytest.raises(ValidationFailed, match="not supported by CSV provider"):
        CsvProvider(folder).option_chain("GOOG", date(2025, 1, 1))
