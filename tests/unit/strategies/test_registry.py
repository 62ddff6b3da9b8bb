"""Strategy registry, factory, catalog and plugin loading."""

from __future__ import annotations

import textwrap
from pathlib import Path

import marshmallow as ma
import pytest

from backend.domain.errors import Conflict, NotFound, ValidationFailed
from backend.domain.strategies import Strategy, StrategyFactory, register
from backend.domain.strategies.registry import unregister

BUILTINS = {
    "sma_crossover",
    "ema_crossover",
    "rsi_mean_reversion",
    "macd",
    "bollinger_breakout",
    "donchian_breakout",
}


def test_builtins_registered_and_created_with_defaults() -> None:
    assert set(StrategyFactory.names("signal")) >= BUILTINS
    s = StrategyFactory.create("sma_crossover", None)
    assert s.params == {"fast": 10, "slow": 20}
    assert StrategyFactory.get("macd").kind == "signal"


def test_unknown_strategy_names_it_and_lists_known() -> None:
    with pytest.raises(NotFound) as exc:
        StrategyFactory.create("nope", {})
    assert exc.value.code == "UNKNOWN_STRATEGY"
    assert "nope" in exc.value.message and "sma_crossover" in exc.value.message
    assert "sma_crossover" in exc.value.details["known"]


def test_bad_params_give_per_field_messages() -> None:
    with pytest.raises(ValidationFailed) as exc:
        StrategyFactory.create("sma_crossover", {"fast": 0, "bogus": 1})
    assert set(exc.value.details) == {"fast", "bogus"}
    with pytest.raises(ValidationFailed) as exc:
        StrategyFactory.create("sma_crossover", {"fast": 30, "slow": 20})
    assert exc.value.details == {"fast": ["must be smaller than slow"]}
    with pytest.raises(ValidationFailed) as exc:
        StrategyFactory.create("rsi_mean_reversion", {"period": "x"})
    assert list(exc.value.details) == ["period"]


def test_register_duplicate_raises_and_custom_strategy_works() -> None:
    @register("test_dummy")
    class Dummy(Strategy):
        description = "dummy"

        class Params(ma.Schema):
            n = ma.fields.Integer(required=True)

    try:
        assert StrategyFactory.create("test_dummy", {"n": 3}).params == {"n": 3}
        with pytest.raises(Conflict):

            @register("test_dummy")
            class Other(Strategy):
                pass

        register("test_dummy")(Dummy)  # same class again is a no-op
    finally:
        unregister("test_dummy")


def test_catalog_json_schema() -> None:
    cat = {c["name"]: c for c in StrategyFactory.catalog(kind="signal")}
    assert set(cat) >= BUILTINS
    sma = cat["sma_crossover"]
    assert sma["kind"] == "signal" and sma["description"]
    props = sma["params_schema"]["properties"]
    assert props["fast"]["type"] == "integer" and props["fast"]["default"] == 10
    assert props["fast"]["minimum"] == 1
    assert cat["rsi_mean_reversion"]["params_schema"]["properties"]["lower"]["type"] == "number"
    assert all(c["kind"] == "signal" for c in cat.values())


def test_load_plugins_from_folder(tmp_path: Path) -> None:
    (tmp_path / "my_plugin.py").write_text(
        textwrap.dedent(
            """
            from backend.domain.strategies import Strategy, register

            @register("plugin_strategy_for_test")
            class P(Strategy):
                description = "from a plugin file"
            """
        )
    )
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    try:
        loaded = StrategyFactory.load_plugins(
            entry_point_group="tradeplatform.strategies.none", folder=str(tmp_path)
        )
        assert loaded == ["plugin_strategy_for_test"]
        assert StrategyFactory.get("plugin_strategy_for_test").description == "from a plugin file"
    finally:
        unregister("plugin_strategy_for_test")
