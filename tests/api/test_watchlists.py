"""Watchlists API: create, rename, reorder, add/remove/reorder symbols, ownership and bad input."""

from __future__ import annotations

import pytest

URL = "/api/v1/watchlists"


def _create(client, h, name="Main", symbols=None):
    body = {"name": name} if symbols is None else {"name": name, "symbols": symbols}
    return client.post(URL, json=body, headers=h)


def test_create_lists_and_rename(client, trader):
    _, h = trader
    r = _create(client, h, "Banks", ["sbin", "HDFCBANK", "SBIN"])
    assert r.status_code == 201, r.get_json()
    wl = r.get_json()
    assert wl["name"] == "Banks" and wl["symbols"] == ["SBIN", "HDFCBANK"]  # upper-cased, de-duplicated
    assert [i["position"] for i in wl["items"]] == [0, 1]
    assert wl["items"][0]["added_at"].endswith("+00:00")

    r = client.patch(f"{URL}/{wl['id']}", json={"name": "PSU banks"}, headers=h)
    assert r.status_code == 200 and r.get_json()["name"] == "PSU banks"
    listed = client.get(URL, headers=h).get_json()
    assert [w["name"] for w in listed] == ["PSU banks"]


def test_add_remove_and_reorder_symbols(client, trader):
    _, h = trader
    wl = _create(client, h, "Main", ["SBIN"]).get_json()
    r = client.post(f"{URL}/{wl['id']}/symbols", json={"symbol": "reliance"}, headers=h)
    assert r.status_code == 201 and r.get_json()["symbols"] == ["SBIN", "RELIANCE"]
    r = client.post(f"{URL}/{wl['id']}/symbols", json={"symbol": "INFY", "position": 0}, headers=h)
    assert r.get_json()["symbols"] == ["INFY", "SBIN", "RELIANCE"]

    r = client.post(f"{URL}/{wl['id']}/symbols", json={"symbol": "SBIN"}, headers=h)
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "WATCHLIST_SYMBOL_EXISTS"

    r = client.put(f"{URL}/{wl['id']}/symbols", json={"symbols": ["RELIANCE", "INFY", "SBIN"]}, headers=h)
    assert r.status_code == 200 and r.get_json()["symbols"] == ["RELIANCE", "INFY", "SBIN"]

    r = client.delete(f"{URL}/{wl['id']}/symbols/INFY", headers=h)
    assert r.status_code == 200 and r.get_json()["symbols"] == ["RELIANCE", "SBIN"]
    assert [i["position"] for i in r.get_json()["items"]] == [0, 1]
    r = client.delete(f"{URL}/{wl['id']}/symbols/INFY", headers=h)
    assert r.status_code == 404
    assert client.get(f"{URL}/{wl['id']}", headers=h).get_json()["symbols"] == ["RELIANCE", "SBIN"]


def test_reorder_lists_needs_every_id_once(client, trader):
    _, h = trader
    a = _create(client, h, "A").get_json()
    b = _create(client, h, "B").get_json()
    c = _create(client, h, "C").get_json()
    assert [w["position"] for w in (a, b, c)] == [0, 1, 2]
    r = client.put(f"{URL}/order", json={"ids": [c["id"], a["id"], b["id"]]}, headers=h)
    assert r.status_code == 200 and [w["name"] for w in r.get_json()] == ["C", "A", "B"]
    assert [w["name"] for w in client.get(URL, headers=h).get_json()] == ["C", "A", "B"]
    r = client.put(f"{URL}/order", json={"ids": [c["id"], a["id"]]}, headers=h)
    assert r.status_code == 422 and "ids" in r.get_json()["error"]["details"]["fields"]
    assert [w["name"] for w in client.get(URL, headers=h).get_json()] == ["C", "A", "B"]


def test_unknown_symbol_and_duplicate_name_change_nothing(client, trader):
    _, h = trader
    r = _create(client, h, "Main", ["SBIN", "NOSUCHCO"])
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "UNKNOWN_SYMBOL"
    assert "NOSUCHCO" in r.get_json()["error"]["message"]
    assert client.get(URL, headers=h).get_json() == []
    wl = _create(client, h, "Main").get_json()
    r = _create(client, h, "Main")
    assert r.status_code == 409 and r.get_json()["error"]["code"] == "WATCHLIST_NAME_TAKEN"
    r = client.post(f"{URL}/{wl['id']}/symbols", json={"symbol": "NOSUCHCO"}, headers=h)
    assert r.status_code == 404 and r.get_json()["error"]["code"] == "UNKNOWN_SYMBOL"
    assert client.get(f"{URL}/{wl['id']}", headers=h).get_json()["symbols"] == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 61}, "name"),
        ({"name": "ok", "symbols": "SBIN"}, "symbols"),
        ({"name": "ok", "extra": 1}, "extra"),
    ],
)
def test_bad_create_is_422_naming_the_field(client, trader, body, field):
    _, h = trader
    r = client.post(URL, json=body, headers=h)
    assert r.status_code == 422, r.get_json()
    assert field in r.get_json()["error"]["details"]["fields"]
    assert client.get(URL, headers=h).get_json() == []


def test_other_users_lists_are_not_found(client, make_user):
    _, h1 = make_user("trader")
    _, h2 = make_user("trader")
    wl = _create(client, h1, "Mine", ["SBIN"]).get_json()
    assert client.get(f"{URL}/{wl['id']}", headers=h2).status_code == 404
    assert client.patch(f"{URL}/{wl['id']}", json={"name": "x"}, headers=h2).status_code == 404
    assert client.post(f"{URL}/{wl['id']}/symbols", json={"symbol": "INFY"}, headers=h2).status_code == 404
    assert client.delete(f"{URL}/{wl['id']}", headers=h2).status_code == 404
    assert client.get(URL, headers=h2).get_json() == []
    # the same name is free for another user
    assert _create(client, h2, "Mine").status_code == 201


def test_delete_and_viewer_is_read_only(client, make_user):
    _, hv = make_user("viewer")
    refused = _create(client, hv, "Watch", ["SBIN"])
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "INSUFFICIENT_SCOPE"
    assert client.get(URL, headers=hv).get_json() == []
    _, ht = make_user("trader")
    wl = _create(client, ht, "Watch", ["SBIN"]).get_json()
    assert wl["symbols"] == ["SBIN"]
    assert client.delete(f"{URL}/{wl['id']}", headers=ht).status_code == 204
    assert client.get(f"{URL}/{wl['id']}", headers=ht).status_code == 404
    assert client.get(URL).status_code == 401
