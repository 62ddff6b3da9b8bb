"""Intraday square-off schedule (pure): when each segment is warned and squared off."""

from datetime import UTC, datetime, time

import pytest

from backend.domain.market.calendar import IST
from backend.domain.orders.square_off import SquareOffConfigError, parse_square_off

CFG = parse_square_off({"warn_minutes": 10, "segments": {"EQ": "15:15", "FO": "15:20"}})


def at(hh, mm):
    return datetime(2026, 12, 1, hh, mm, tzinfo=IST)


def test_parse_and_defaults():
    assert CFG.times == {"EQ": time(15, 15), "FO": time(15, 20)} and CFG.warn_minutes == 10
    assert parse_square_off(None).times == {}
    assert CFG.at("EQ", at(0, 0).date()) == at(15, 15)
    assert CFG.warn_at("FO", at(0, 0).date()) == at(15, 10)


def test_due_phases_through_the_afternoon():
    assert CFG.due(at(15, 4), set()) == []
    assert CFG.due(at(15, 5), set()) == [("warn", "EQ")]
    assert CFG.due(at(15, 12), {("warn", "EQ")}) == [("warn", "FO")]
    assert CFG.due(at(15, 15), {("warn", "EQ"), ("warn", "FO")}) == [("square_off", "EQ")]
    # a scheduler that starts late squares off at once and skips the stale warning
    assert CFG.due(at(15, 30), set()) == [("square_off", "EQ"), ("square_off", "FO")]
    # 09:45 UTC is 15:15 IST
    assert ("square_off", "EQ") in CFG.due(datetime(2026, 12, 1, 9, 45, tzinfo=UTC), {("warn", "FO")})


@pytest.mark.parametrize(
    "node, key",
    [
        ({"segments": {"EQ": "3pm"}}, "square_off.segments.EQ"),
        ({"segments": {"EQ": "25:00"}}, "square_off.segments.EQ"),
        ({"warn_minutes": -1}, "square_off.warn_minutes"),
        ({"warn_minutes": "10"}, "square_off.warn_minutes"),
        ({"segments": ["EQ"]}, "square_off.segments"),
        ("15:15", "square_off"),
    ],
)
def test_bad_config_names_the_key(node, key):
    with pytest.raises(SquareOffConfigError) as exc:
        parse_square_off(node)
    assert exc.value.key == key


def test_shipped_config_parses():
    from pathlib import Path

    import yaml

    data = yaml.safe_load((Path(__file__).parents[3] / "config" / "trading.yaml").read_text())
    cfg = parse_square_off(data["square_off"])
    assert cfg.times == {"EQ": time(15, 15), "FO": time(15, 20)}  # Upstox's published times
