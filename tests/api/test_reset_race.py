"""Issue 17: an account reset racing BUYs sometimes answered 500 to the rejected order.

The rejected order was committed, the reset (waiting for the account lock) deleted it, and the
rejection was then built from the expired row: reloading a deleted row raised. The rejection is now
built before the commit, so the BUY answers its 422 whatever happens to the account afterwards.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import event
from sqlalchemy.orm import Session

from tests.services import trading_support
from tests.services.trading_support import check_invariants, order_body

market = trading_support.market  # shared fake market: RELIANCE 1000

P = "/api/v1/portfolio"


def _account(client, headers, cash: str = "10000") -> int:
    r = client.post(f"{P}/accounts", json={"name": "racing", "starting_cash": cash}, headers=headers)
    assert r.status_code == 201, r.get_json()
    return r.get_json()["id"]


def test_a_reset_right_after_a_rejected_buy_commits_leaves_the_buy_a_clean_422(app, client, trader, market):
    from backend.models.trading import Order

    _, h = trader
    aid = _account(client, h)
    state = {"rejected_flushed": False, "reset": None}
    placing = threading.current_thread()

    def after_flush(session, _ctx):
        if threading.current_thread() is placing and any(
            isinstance(o, Order) and o.status == "rejected" for o in session.new
        ):
            state["rejected_flushed"] = True

    def after_commit(session):
        # The BUY's rejected order is committed: the reset that was waiting for the lock runs now.
        if threading.current_thread() is not placing or not state["rejected_flushed"] or state["reset"]:
            return

        def reset():
            r = app.test_client().post(f"{P}/accounts/{aid}/reset", json={"confirm": "RESET"}, headers=h)
            state["reset"] = r.status_code

        t = threading.Thread(target=reset)
        t.start()
        t.join(60)

    event.listen(Session, "after_flush", after_flush)
    event.listen(Session, "after_commit", after_commit)
    try:
        r = client.post("/api/v1/orders", json=order_body(account_id=aid, quantity=1000), headers=h)
    finally:
        event.remove(Session, "after_flush", after_flush)
        event.remove(Session, "after_commit", after_commit)
    assert state["reset"] == 200, "the reset did not run between the commit and the answer"
    assert r.status_code == 422, r.get_json()
    err = r.get_json()["error"]
    assert err["code"] == "RISK_REJECTED"
    assert err["details"]["checks"] and isinstance(err["details"]["order_id"], int)
    orders = client.get(f"/api/v1/orders?account_id={aid}", headers=h).get_json()["items"]
    assert orders == []  # the reset wiped it, as it should
    check_invariants(app, aid)


def test_resets_racing_buys_never_answer_500(app, client, trader, market, monkeypatch):
    monkeypatch.setitem(app.config, "RATELIMIT_ORDERS", "100000 per minute")
    _, h = trader
    aid = _account(client, h)

    def act(i: int) -> tuple[str, int]:
        c = app.test_client()
        if i % 10 == 0:
            r = c.post(f"{P}/accounts/{aid}/reset", json={"confirm": "RESET"}, headers=h)
            return "reset", r.status_code
        quantity = 1000 if i % 2 else 1  # 1000 x 1000 is far over the cash: rejected and stored
        r = c.post("/api/v1/orders", json=order_body(account_id=aid, quantity=quantity), headers=h)
        return ("reject" if i % 2 else "buy"), r.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(act, range(120)))
    assert not [r for r in results if r[1] >= 500], results
    assert {code for kind, code in results if kind == "reset"} == {200}
    assert {code for kind, code in results if kind == "reject"} == {422}
    assert {code for kind, code in results if kind == "buy"} <= {201, 422}
    check_invariants(app, aid)
