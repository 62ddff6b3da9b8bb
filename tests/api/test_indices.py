"""Indices API: define, compute incrementally (old rows never rewritten), values, allocation,
simulation in another currency, ownership and bad input. Prices: the simulated market."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

URL = "/api/v1/indices"
SYMS = ["SBIN", "ITC", "INFY"]


def _create(client, h, **over):
    body = {"name": "Three", "symbols": SYMS, "weighting": "equal", "start_date": "2024-01-01", **over}
    return client.post(URL, json=body, headers=h)


def _all_values(client, h, iid, **q):
    out, cursor = [], None
    while True:
        params = {"limit": 50, **q, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{URL}/{iid}/values", query_string=params, headers=h).get_json()
        out += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return out


def _closes(client, h, symbol, start, end):
    r = client.get(
        f"/api/v1/market-data/candles/{symbol}",
        query_string={"interval": "1d", "from": f"{start}T00:00:00+00:00", "to": f"{end}T23:59:00+00:00"},
        headers=h,
    )
    assert r.status_code == 200, r.get_json()
    return r.get_json()["candles"]


def test_create_list_get_delete(client, trader, make_user):
    _, h = trader
    r = _create(client, h, rebalance="drift", drift_threshold="0.05", currency="usd")
    assert r.status_code == 201, r.get_json()
    idx = r.get_json()
    assert idx["symbols"] == SYMS and idx["weighting"] == "equal" and idx["rebalance"] == "drift"
    assert Decimal(idx["base_value"]) == 1000 and Decimal(idx["capital"]) == 10_000_000
    assert Decimal(idx["drift_threshold"]) == Decimal("0.05") and idx["computed_until"] is None
    assert idx["currency"] == "USD"
    assert idx["created_at"].endswith("+00:00")
    listed = client.get(URL, headers=h).get_json()
    assert [i["id"] for i in listed["items"]] == [idx["id"]]
    assert client.get(f"{URL}/{idx['id']}", headers=h).get_json()["name"] == "Three"
    assert _create(client, h).status_code == 409  # name taken

    _, other = make_user("trader")
    assert client.get(f"{URL}/{idx['id']}", headers=other).status_code == 404  # not yours
    assert client.delete(f"{URL}/{idx['id']}", headers=other).status_code == 404

    assert client.delete(f"{URL}/{idx['id']}", headers=h).status_code == 204
    r = client.get(f"{URL}/{idx['id']}", headers=h)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "INDEX_NOT_FOUND"


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"weighting": "magic"}, "weighting"),
        ({"rebalance": "drift"}, "drift_threshold"),
        ({"weighting": "custom"}, "weights"),
        ({"weighting": "custom", "weights": {"SBIN": "1", "ITC": "1"}}, "weights"),  # INFY has none
        ({"weighting": "market_cap"}, "shares_outstanding"),
        ({"lookback": 2}, "lookback"),
        ({"start_date": "1999-12-31"}, "start_date"),
        ({"start_date": "2999-01-01"}, "start_date"),
        ({"symbols": ["SBIN", "NIFTY"]}, "symbols"),
        ({"symbols": ["SBIN", "SBIN"]}, "symbols"),
        ({"currency": "EURO"}, "currency"),
        ({"capital": "0"}, "capital"),
    ],
)
def test_bad_definitions_are_422_naming_the_field(client, trader, over, field):
    _, h = trader
    r = _create(client, h, **over)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["details"]["fields"]
    assert client.get(URL, headers=h).get_json()["items"] == []  # nothing stored


def test_market_cap_names_the_instrument_without_shares(client, trader):
    _, h = trader
    shares = {"SBIN": [{"effective_from": "2020-01-01", "shares": "8925000000"}]}
    r = _create(client, h, weighting="market_cap", shares_outstanding=shares)
    assert r.status_code == 422
    assert "ITC, INFY" in r.get_json()["error"]["message"]


def test_unknown_symbol_is_404_naming_it(client, trader):
    _, h = trader
    r = _create(client, h, symbols=["SBIN", "NOSUCH"])
    assert r.status_code == 404 and "NOSUCH" in r.get_json()["error"]["message"]


def test_compute_appends_and_never_rewrites_history(client, trader, app):
    _, h = trader
    idx = _create(client, h, rebalance="monthly").get_json()
    r = client.post(f"{URL}/{idx['id']}/compute", json={"end_date": "2024-03-28"}, headers=h)
    assert r.status_code == 200, r.get_json()
    first = r.get_json()
    assert first["index"]["computed_until"] == "2024-03-28"
    assert first["added_rebalances"] == 3  # Jan (initial), Feb, Mar
    before = _all_values(client, h, idx["id"])
    assert len(before) == first["added_values"] > 50
    assert before[0]["date"] == "2024-01-01"

    from backend.extensions import db
    from backend.models.indices import IndexAllocation, IndexValue

    def rows(model):
        with app.app_context():
            return {r.id: (r.day, r.created_at) for r in db.session.scalars(db.select(model))}

    values_before, allocs_before = rows(IndexValue), rows(IndexAllocation)

    r = client.post(f"{URL}/{idx['id']}/compute", json={"end_date": "2024-06-28"}, headers=h)
    second = r.get_json()
    assert second["added_rebalances"] == 3  # Apr, May, Jun
    after = _all_values(client, h, idx["id"])
    assert after[: len(before)] == before  # same values, same created_at
    assert all(a["date"] > "2024-03-28" for a in after[len(before) :])
    values_after, allocs_after = rows(IndexValue), rows(IndexAllocation)
    assert {k: values_after[k] for k in values_before} == values_before  # old ids and created_at kept
    assert {k: allocs_after[k] for k in allocs_before} == allocs_before
    assert len(values_after) == len(after)

    # computing again adds nothing
    r = client.post(f"{URL}/{idx['id']}/compute", json={"end_date": "2024-06-28"}, headers=h)
    assert r.get_json()["added_values"] == 0 and rows(IndexValue) == values_after

    # two steps equal one: the same definition computed in one go
    twin = _create(client, h, name="Twin", rebalance="monthly").get_json()
    client.post(f"{URL}/{twin['id']}/compute", json={"end_date": "2024-06-28"}, headers=h)
    once = _all_values(client, h, twin["id"])
    assert [(v["date"], v["value"]) for v in once] == [(v["date"], v["value"]) for v in after]


def test_values_paging_and_range(client, trader):
    _, h = trader
    idx = _create(client, h).get_json()
    client.post(f"{URL}/{idx['id']}/compute", json={"end_date": "2024-02-29"}, headers=h)
    page = client.get(f"{URL}/{idx['id']}/values", query_string={"limit": 5}, headers=h).get_json()
    assert len(page["items"]) == 5 and page["next_cursor"]
    nxt = client.get(
        f"{URL}/{idx['id']}/values", query_string={"limit": 5, "cursor": page["next_cursor"]}, headers=h
    ).get_json()
    assert nxt["items"][0]["date"] > page["items"][-1]["date"]
    feb = _all_values(client, h, idx["id"], **{"from": "2024-02-01", "to": "2024-02-15"})
    assert feb and all("2024-02-01" <= v["date"] <= "2024-02-15" for v in feb)
    r = client.get(f"{URL}/{idx['id']}/values", query_string={"from": "yesterday"}, headers=h)
    assert r.status_code == 422 and "from" in r.get_json()["error"]["details"]["fields"]


def test_first_value_is_base_less_charges_and_follows_prices(client, trader):
    _, h = trader
    idx = _create(client, h, rebalance="never").get_json()
    client.post(f"{URL}/{idx['id']}/compute", json={"end_date": "2024-01-31"}, headers=h)
    alloc = client.get(f"{URL}/{idx['id']}/allocation", headers=h).get_json()
    assert alloc["rebalanced_on"] == "2024-01-01"
    charges = Decimal(alloc["total_charges"])
    assert charges > 0  # three delivery buys of ~33 lakh each
    values = _all_values(client, h, idx["id"])
    capital = Decimal("10000000")
    assert Decimal(values[0]["value"]) == ((capital - charges) / capital * 1000).quantize(Decimal("0.0001"))
    # buy and hold: the last value is the held units at the last closes, independently read
    units = {i["symbol"]: Decimal(i["units"]) for i in alloc["items"]}
    last = values[-1]["date"]
    equity = sum(units[s] * Decimal(str(_closes(client, h, s, last, last)[-1]["close"])) for s in SYMS)
    assert float(values[-1]["value"]) == pytest.approx(float(equity / capital * 1000), rel=1e-6)
    # the current allocation's weights drifted with the prices since the start: units x close / equity
    for item in alloc["items"]:
        close = Decimal(str(_closes(client, h, item["symbol"], last, last)[-1]["close"]))
        assert float(item["current_weight"]) == pytest.approx(
            float(units[item["symbol"]] * close / equity), abs=1e-8
        )
    assert [i["current_weight"] for i in alloc["items"]] != [i["target_weight"] for i in alloc["items"]]
    on_start = client.get(
        f"{URL}/{idx['id']}/allocation", query_string={"on": "2024-01-05"}, headers=h
    ).get_json()
    assert all(i["current_weight"] is None for i in on_start["items"])  # only the latest is marked to market


def test_allocation_current_and_on_a_day(client, trader):
    _, h = trader
    idx = _create(client, h, weighting="inverse_volatility", lookback=20).get_json()
    r = client.get(f"{URL}/{idx['id']}/allocation", headers=h)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "INDEX_NOT_COMPUTED"
    client.post(f"{URL}/{idx['id']}/compute", json={"end_date": "2024-03-15"}, headers=h)
    cur = client.get(f"{URL}/{idx['id']}/allocation", headers=h).get_json()
    assert cur["rebalanced_on"] == "2024-03-01" and cur["computed_until"] == "2024-03-15"
    assert [i["symbol"] for i in cur["items"]] == SYMS
    assert sum(Decimal(i["target_weight"]) for i in cur["items"]) == pytest.approx(
        Decimal(1), abs=Decimal("1e-9")
    )
    jan = client.get(f"{URL}/{idx['id']}/allocation", query_string={"on": "2024-01-20"}, headers=h).get_json()
    assert jan["rebalanced_on"] == "2024-01-01"
    assert [i["target_weight"] for i in jan["items"]] != [i["target_weight"] for i in cur["items"]]


def test_simulate_in_inr_whole_shares(client, trader):
    _, h = trader
    idx = _create(client, h, rebalance="never").get_json()
    body = {"amount": "100000", "currency": "INR", "start_date": "2024-01-01", "end_date": "2024-02-29"}
    r = client.post(f"{URL}/{idx['id']}/simulate", json=body, headers=h)
    assert r.status_code == 200, r.get_json()
    sim = r.get_json()
    assert sim["invested"] == "100000" and sim["currency"] == "INR"
    assert sim["start_date"] == "2024-01-01" and sim["end_date"] <= "2024-02-29"
    # whole shares at the end plus cash, at the last closes, read independently
    last = sim["end_date"]
    equity = Decimal(sim["cash"]) + sum(
        h_["shares"] * Decimal(str(_closes(client, h, h_["symbol"], last, last)[-1]["close"]))
        for h_ in sim["holdings"]
    )
    assert Decimal(sim["final_value"]) == equity.quantize(Decimal("0.01"))
    assert sim["total_return"] == pytest.approx(float(Decimal(sim["final_value"]) / 100000 - 1), abs=1e-8)
    assert Decimal(sim["cash"]) >= 0 and Decimal(sim["charges"]) > 0
    assert Decimal(sim["values"][0]["value"]) == Decimal(100000) - Decimal(sim["charges"])  # never rebalanced


def test_simulate_in_usd_converts_at_each_days_rate(client, trader, app):
    _, h = trader
    idx = _create(client, h, rebalance="never").get_json()
    usd = {"amount": "1000", "currency": "USD", "start_date": "2024-01-01", "end_date": "2024-01-31"}
    inr = {**usd, "currency": "INR"}
    a = client.post(f"{URL}/{idx['id']}/simulate", json=usd, headers=h).get_json()
    from backend.services import indices as svc

    with app.app_context():
        fx = svc.fx_provider().rates("USD", "INR", date(2024, 1, 1), date(2024, 1, 31))
    inr["amount"] = str(Decimal(repr(fx[date(2024, 1, 1)])).quantize(Decimal("0.0001")) * 1000)
    b = client.post(f"{URL}/{idx['id']}/simulate", json=inr, headers=h).get_json()
    assert a["currency"] == "USD" and a["invested"] == "1000"
    # the same rupees invested: each USD value is the INR value over that day's rate
    for va, vb in zip(a["values"], b["values"], strict=True):
        rate = fx[date.fromisoformat(va["date"])]
        assert float(va["value"]) == pytest.approx(float(vb["value"]) / rate, abs=0.02)
    r = client.post(f"{URL}/{idx['id']}/simulate", json={**usd, "currency": "XYZ"}, headers=h)
    assert r.status_code == 404 and "XYZ" in r.get_json()["error"]["message"]
    r = client.post(f"{URL}/{idx['id']}/simulate", json={**usd, "amount": "-5"}, headers=h)
    assert r.status_code == 422 and "amount" in r.get_json()["error"]["details"]["fields"]


def test_read_key_simulates_but_cannot_compute(client, trader):
    _, h = trader
    idx = _create(client, h).get_json()
    r = client.post("/api/v1/auth/api-keys", json={"name": "ro", "scopes": ["read"]}, headers=h)
    ro = {"X-API-Key": r.get_json()["key"]}
    body = {"amount": "1000", "start_date": "2024-01-01", "end_date": "2024-01-10"}
    assert client.post(f"{URL}/{idx['id']}/simulate", json=body, headers=ro).status_code == 200
    assert client.post(f"{URL}/{idx['id']}/compute", json={}, headers=ro).status_code == 403


def test_custom_and_market_cap_weights_through_compute(client, trader):
    _, h = trader
    custom = _create(
        client, h, name="Custom", weighting="custom", weights={"sbin": "5", "ITC": "3", "INFY": "2"}
    )
    assert custom.status_code == 201, custom.get_json()
    iid = custom.get_json()["id"]
    client.post(f"{URL}/{iid}/compute", json={"end_date": "2024-01-10"}, headers=h)
    alloc = client.get(f"{URL}/{iid}/allocation", headers=h).get_json()
    assert [Decimal(i["target_weight"]) for i in alloc["items"]] == [
        Decimal("0.5"),
        Decimal("0.3"),
        Decimal("0.2"),
    ]

    shares = {
        "SBIN": [{"effective_from": "2020-01-01", "shares": "8925000000"}],
        "ITC": [{"effective_from": "2020-01-01", "shares": "12500000000"}],
        "INFY": [{"effective_from": "2024-02-01", "shares": "4150000000"}],  # none in force in January
    }
    cap = _create(client, h, name="Cap", weighting="market_cap", shares_outstanding=shares)
    assert cap.status_code == 201, cap.get_json()
    assert cap.get_json()["shares_outstanding"]["INFY"] == [
        {"effective_from": "2024-02-01", "shares": "4150000000"}
    ]
    r = client.post(f"{URL}/{cap.get_json()['id']}/compute", json={"end_date": "2024-01-10"}, headers=h)
    assert (
        r.status_code == 422
        and "INFY: no shares-outstanding figure on or before 2024-01-01" in (r.get_json()["error"]["message"])
    )
    assert client.get(f"{URL}/{cap.get_json()['id']}/values", headers=h).get_json()["items"] == []

    shares["INFY"] = [{"effective_from": "2020-01-01", "shares": "4150000000"}]
    cap = _create(client, h, name="Cap2", weighting="market_cap", shares_outstanding=shares).get_json()
    client.post(f"{URL}/{cap['id']}/compute", json={"end_date": "2024-01-10"}, headers=h)
    alloc = client.get(f"{URL}/{cap['id']}/allocation", headers=h).get_json()
    price = {i["symbol"]: Decimal(i["price"]) for i in alloc["items"]}
    n = {"SBIN": Decimal(8925000000), "ITC": Decimal(12500000000), "INFY": Decimal(4150000000)}
    total = sum(n[s] * price[s] for s in SYMS)
    for item in alloc["items"]:
        expected = n[item["symbol"]] * price[item["symbol"]] / total
        assert Decimal(item["target_weight"]) == pytest.approx(expected, abs=Decimal("1e-9"))


def test_simulate_with_the_csv_fx_provider(client, trader, app, tmp_path):
    _, h = trader
    idx = _create(client, h, rebalance="never").get_json()
    # EUR only as INREUR.csv: the provider inverts it; 2024-01-02 missing: the 1 Jan rate carries over
    (tmp_path / "INREUR.csv").write_text(
        "Date,Close\n2023-12-29,0.0110\n2024-01-01,0.0100\n2024-01-03,0.0125\n"
    )
    saved = {k: app.config.get(k) for k in ("FX_PROVIDER", "FX_CSV_DIR")}
    app.config.update(FX_PROVIDER="csv", FX_CSV_DIR=str(tmp_path))
    app.extensions.pop("fx_provider", None)
    try:
        body = {"amount": "1000", "currency": "EUR", "start_date": "2024-01-01", "end_date": "2024-01-03"}
        r = client.post(f"{URL}/{idx['id']}/simulate", json=body, headers=h)
        assert r.status_code == 200, r.get_json()
        eur = r.get_json()
        inr = client.post(
            f"{URL}/{idx['id']}/simulate", json={**body, "currency": "INR", "amount": "100000"}, headers=h
        ).get_json()
        rate = {"2024-01-01": 100.0, "2024-01-02": 100.0, "2024-01-03": 80.0}  # INR per EUR
        for ve, vi in zip(eur["values"], inr["values"], strict=True):
            assert float(ve["value"]) == pytest.approx(float(vi["value"]) / rate[ve["date"]], abs=0.01)
        r = client.post(f"{URL}/{idx['id']}/simulate", json={**body, "currency": "USD"}, headers=h)
        assert r.status_code == 404 and "USDINR.csv" in r.get_json()["error"]["message"]
    finally:
        app.config.update(saved)
        app.extensions.pop("fx_provider", None)
