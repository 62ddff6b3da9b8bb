"""FX providers: the simulated walk is deterministic and consistent; the CSV one reads pair files."""

from datetime import date

import pytest

from backend.domain.errors import NotFound, ValidationFailed
from backend.domain.market.fx import (
    CsvFxProvider,
    FxProvider,
    SimulatedFxProvider,
    build_fx_provider,
    register_fx_provider,
)


def test_simulated_rates_are_deterministic_and_overlap_exactly():
    a = SimulatedFxProvider(seed=7).rates("USD", "INR", date(2023, 12, 1), date(2024, 2, 1))
    b = SimulatedFxProvider(seed=7).rates("USD", "INR", date(2024, 1, 10), date(2024, 3, 1))
    common = set(a) & set(b)
    assert len(common) > 10 and all(a[d] == b[d] for d in common)
    assert all(d.weekday() < 5 for d in a)  # FX trades Monday to Friday
    assert a[date(2024, 1, 1)] == 83.2  # the anchor day sits at the reference level
    assert SimulatedFxProvider(seed=8).rates("USD", "INR", date(2024, 1, 2), date(2024, 1, 2)) != {
        date(2024, 1, 2): a[date(2024, 1, 2)]
    }


def test_simulated_cross_rates_go_through_inr():
    p = SimulatedFxProvider()
    day = date(2024, 5, 6)
    usd = p.rates("USD", "INR", day, day)[day]
    eur = p.rates("EUR", "INR", day, day)[day]
    assert p.rates("EUR", "USD", day, day)[day] == pytest.approx(eur / usd)
    assert p.rates("INR", "USD", day, day)[day] == pytest.approx(1 / usd)
    with pytest.raises(NotFound, match="no simulated FX rate for XYZ"):
        p.rates("XYZ", "INR", day, day)
    with pytest.raises(ValidationFailed):
        p.rates("US", "INR", day, day)


def test_csv_rates_direct_and_inverted(tmp_path):
    (tmp_path / "USDINR.csv").write_text(
        "Date,Open,High,Low,Close\n2024-01-02,83,84,82,83.5\n2024-01-03,83,84,82,84\n"
    )
    p = CsvFxProvider(tmp_path)
    assert p.rates("USD", "INR", date(2024, 1, 1), date(2024, 1, 31)) == {
        date(2024, 1, 2): 83.5,
        date(2024, 1, 3): 84.0,
    }
    assert p.rates("INR", "USD", date(2024, 1, 3), date(2024, 1, 3)) == {date(2024, 1, 3): 1 / 84.0}
    with pytest.raises(NotFound, match="add EURINR.csv"):
        p.rates("EUR", "INR", date(2024, 1, 1), date(2024, 1, 2))


def test_csv_errors_name_the_row(tmp_path):
    (tmp_path / "USDINR.csv").write_text("date,rate\n2024-01-02,83\n2024-01-03,-1\n")
    with pytest.raises(ValidationFailed, match="row 3: rate must be positive"):
        CsvFxProvider(tmp_path).rates("USD", "INR", date(2024, 1, 1), date(2024, 1, 9))


def test_other_providers_plug_in():
    class Fixed(FxProvider):
        name = "fixed"

        def rates(self, base, quote, start, end):
            return {start: 2.0}

    register_fx_provider("fixed", Fixed)
    assert build_fx_provider("fixed").rates("USD", "INR", date(2024, 1, 1), date(2024, 1, 1)) == {
        date(2024, 1, 1): 2.0
    }
    with pytest.raises(ValidationFailed, match="unknown FX provider"):
        build_fx_provider("nope")
