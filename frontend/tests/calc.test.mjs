// Unit tests of the dashboard's computing logic (node --test; no browser, no server).
import { test } from "node:test";
import assert from "node:assert/strict";

import {
  applyTick, calendarMonth, change, chartTime, dec, decString, drawdown, formatINR, formatIST, formatPrice,
  formatQty, groupIndian, istDay, newTicketKey, orderBody, payoffAt, payoffCurve, sum, ticketErrors, toBars,
  marketValue, toCSV, unrealisedPnl,
} from "../../backend/dashboard/static/js/calc.js";

test("Indian digit grouping: last three, then pairs", () => {
  assert.equal(groupIndian("1"), "1");
  assert.equal(groupIndian("999"), "999");
  assert.equal(groupIndian("1000"), "1,000");
  assert.equal(groupIndian("100000"), "1,00,000");
  assert.equal(groupIndian("12345678"), "1,23,45,678");
  assert.equal(groupIndian("1000000000"), "1,00,00,00,000");
});

test("formatINR rounds half away from zero and signs gains on request", () => {
  assert.equal(formatINR("100000"), "₹1,00,000.00");
  assert.equal(formatINR("1234567.891"), "₹12,34,567.89");
  assert.equal(formatINR("0.005"), "₹0.01");
  assert.equal(formatINR("-0.005"), "-₹0.01");
  assert.equal(formatINR("-1234.5"), "-₹1,234.50");
  assert.equal(formatINR("250.5", { sign: true }), "+₹250.50");
  assert.equal(formatINR("0", { sign: true }), "₹0.00");
  assert.equal(formatINR("-0.001"), "₹0.00"); // rounds to zero: no "-₹0.00"
  assert.equal(formatINR(null), "—");
  assert.equal(formatINR("abc"), "—");
  assert.equal(formatPrice("812.35"), "812.35");
  assert.equal(formatQty(-150000), "-1,50,000");
});

test("decimals are exact (no float drift)", () => {
  assert.equal(decString(dec("0.1") + dec("0.2"), 2), "0.30");
  assert.equal(decString(dec("1000.60") * 3n / 1n, 2), "3001.80");
  assert.equal(dec("12.3456785"), 12345679n); // 7th decimal rounds the 6th
  assert.equal(decString(sum(["1.10", null, "2.20", dec("-0.30")]), 2), "3.00");
});

test("unrealised P&L long and short, exact to the paisa", () => {
  assert.equal(decString(unrealisedPnl(10, "1000.60", "1003.15"), 2), "25.50");
  assert.equal(decString(unrealisedPnl(-5, "500.05", "498.00"), 2), "10.25");
  assert.equal(unrealisedPnl(5, "500", null), null);
  assert.equal(formatINR(unrealisedPnl(3, "0.10", "0.30"), { sign: true }), "+₹0.60");
});

test("a holding's live market value, exact, in Indian grouping", () => {
  assert.equal(formatINR(marketValue(150, "1143.70")), "₹1,71,555.00");
  assert.equal(marketValue(10, null), null);
});

test("change vs reference", () => {
  const c = change("110", "100");
  assert.equal(decString(c.abs, 2), "10.00");
  assert.equal(c.pct, "10.00");
  assert.equal(change("99.5", "100").pct, "-0.50");
  assert.equal(change("1", "0").pct, null);
});

test("IST formatting and the chart's IST-shifted time axis", () => {
  assert.equal(formatIST("2025-01-02T04:00:01+00:00"), "02 Jan 2025, 09:30:01 IST");
  assert.equal(formatIST(Date.parse("2025-01-02T10:00:00Z"), { timeOnly: true }), "15:30:00 IST");
  assert.equal(chartTime("2025-01-02T03:45:00+00:00"), Date.parse("2025-01-02T09:15:00Z") / 1000);
  assert.equal(istDay("2025-01-01T19:00:00Z"), "2025-01-02"); // 00:30 IST next day
});

test("30m bars aggregate pairs of 15m bars; 1W starts Monday IST", () => {
  const c = (ts, o, h, l, cl, v) => ({ ts, open: o, high: h, low: l, close: cl, volume: v });
  const bars = toBars(
    [
      c("2025-01-02T03:45:00Z", "100", "105", "99", "104", 10), // 09:15 IST
      c("2025-01-02T04:00:00Z", "104", "106", "101", "102", 5), // 09:30 IST -> new 30m bucket (09:30)
      c("2025-01-02T04:15:00Z", "102", "103", "98", "99", 7), // 09:45 IST -> same bucket as 09:30
    ],
    "30m",
  );
  assert.equal(bars.length, 2);
  assert.deepEqual(
    { o: bars[1].open, h: bars[1].high, l: bars[1].low, c: bars[1].close, v: bars[1].volume },
    { o: 104, h: 106, l: 98, c: 99, v: 12 },
  );
  const weekly = toBars(
    [
      c("2024-12-29T18:30:00Z", "1", "2", "1", "2", 1), // Mon 30 Dec 2024 00:00 IST
      c("2025-01-02T18:30:00Z", "2", "5", "2", "4", 1), // Fri 03 Jan 2025
      c("2025-01-05T18:30:00Z", "4", "4", "3", "3", 1), // Mon 06 Jan 2025: new week
    ],
    "1W",
  );
  assert.equal(weekly.length, 2);
  assert.equal(weekly[0].high, 5);
  assert.equal(new Date(weekly[0].time * 1000).toISOString().slice(0, 10), "2024-12-30");
});

test("a live tick updates the last bar or opens the next", () => {
  const bars = toBars([{ ts: "2025-01-02T03:45:00Z", open: "10", high: "11", low: "9", close: "10", volume: 1 }], "1m");
  applyTick(bars, "2025-01-02T03:45:30Z", "12", 60);
  assert.equal(bars.length, 1);
  assert.equal(bars[0].high, 12);
  applyTick(bars, "2025-01-02T03:47:10Z", "8", 60);
  assert.equal(bars.length, 2);
  assert.equal(bars[1].time - bars[0].time, 120);
});

test("payoff: long call, short straddle, bull spread", () => {
  const call = [{ kind: "CE", side: "BUY", strike: 100, premium: 5, quantity: 50 }];
  assert.equal(payoffAt(call, 90), -250);
  assert.equal(payoffAt(call, 120), 750);
  let r = payoffCurve(call, 50, 150);
  assert.deepEqual(r.breakevens, [105]);
  assert.equal(r.maxLoss, -250);
  assert.equal(r.maxProfit, Infinity);

  const straddle = [
    { kind: "CE", side: "SELL", strike: 100, premium: 6, quantity: 1 },
    { kind: "PE", side: "SELL", strike: 100, premium: 4, quantity: 1 },
  ];
  r = payoffCurve(straddle, 50, 150);
  assert.deepEqual(r.breakevens, [90, 110]);
  assert.equal(r.maxProfit, 10);
  assert.equal(r.maxLoss, -Infinity);

  const spread = [
    { kind: "CE", side: "BUY", strike: 100, premium: 7, quantity: 1 },
    { kind: "CE", side: "SELL", strike: 110, premium: 3, quantity: 1 },
  ];
  r = payoffCurve(spread, 80, 130, 37); // steps that miss the strikes: kinks are still exact
  assert.deepEqual(r.breakevens, [104]);
  assert.equal(r.maxProfit, 6);
  assert.equal(r.maxLoss, -4);
});

test("order body: amo/slice only when ticked, prices only where they belong", () => {
  const base = { symbol: " sbin ", side: "BUY", type: "LIMIT", quantity: "5", price: "812.35", trigger_price: "9", product: "I" };
  const b = orderBody(base);
  assert.deepEqual(b, { symbol: "SBIN", side: "BUY", type: "LIMIT", quantity: 5, product: "I", validity: "DAY", price: "812.35" });
  assert.ok(!("amo" in b) && !("slice" in b));
  const m = orderBody({ ...base, type: "SL-M", amo: true, slice: true, account_id: "3" });
  assert.equal(m.trigger_price, "9");
  assert.ok(!("price" in m));
  assert.equal(m.amo, true);
  assert.equal(m.slice, true);
  assert.equal(m.account_id, 3);
  assert.deepEqual(Object.keys(ticketErrors(orderBody({ ...base, quantity: "0", price: "-1" }))).sort(), ["price", "quantity"]);
  assert.deepEqual(ticketErrors(b), {});
});

test("ticket keys are unique and valid Idempotency-Key values", () => {
  const a = newTicketKey(), b = newTicketKey();
  assert.notEqual(a, b);
  assert.match(a, /^[A-Za-z0-9._:-]{1,64}$/);
});

test("drawdown, CSV and the P&L calendar", () => {
  assert.deepEqual(drawdown([100, 120, 90, null, 130]), [0, 0, -0.25, null, 0]);
  assert.equal(toCSV([{ a: 1, b: 'x,"y"' }], ["a", "b"]), 'a,b\r\n1,"x,""y"""\r\n');
  const weeks = calendarMonth(2025, 1, { "2025-01-01": 5n });
  assert.equal(weeks[0][2].day, 1); // 1 Jan 2025 was a Wednesday
  assert.equal(weeks[0][2].pnl, 5n);
  assert.equal(weeks.at(-1).length, 7);
});

test("alert bodies: level kinds send a decimal string, others a JSON object, errors name the field", async () => {
  const { alertBody } = await import("../../backend/dashboard/static/js/calc.js");
  assert.deepEqual(alertBody({ name: " Breakout ", symbol: "sbin", kind: "price_above", level: "1,250.50" }).body, {
    name: "Breakout", symbol: "SBIN", params: { level: "1250.5" }, recurring: false, cooldown_seconds: 0, kind: "price_above",
  });
  assert.equal(alertBody({ symbol: "SBIN", kind: "cross_up", level: "800" }).body.params.level, "800");
  assert.equal(alertBody({ symbol: "SBIN", kind: "price_below", level: "0" }).error, "level: enter a price above 0");
  assert.equal(alertBody({ symbol: "", kind: "price_below", level: "1" }).error, "symbol: enter a symbol");
  const pct = alertBody({ symbol: "TCS", kind: "pct_change", paramsJson: '{"pct": "2", "window_seconds": 300}', recurring: true, cooldown: "60" });
  assert.deepEqual(pct.body.params, { pct: "2", window_seconds: 300 });
  assert.equal(pct.body.cooldown_seconds, 60);
  assert.equal(pct.body.recurring, true);
  assert.equal(alertBody({ symbol: "TCS", kind: "pct_change", paramsJson: "[1]" }).error, "params: must be a JSON object");
  assert.equal(alertBody({ symbol: "TCS", kind: "pct_change", paramsJson: "{" }).error, "params: not valid JSON");
  assert.equal(alertBody({ symbol: "TCS", kind: "price_above", level: "5", cooldown: "1.5" }).error.split(":")[0], "cooldown_seconds");
  assert.equal("kind" in alertBody({ symbol: "TCS", kind: "price_above", level: "5" }, { partial: true }).body, false);
});

test("analytics: P&L day map, months spanned, month summary", async () => {
  const { pnlDayMap, monthsOf, monthSummary, calendarMonth: cal } = await import("../../backend/dashboard/static/js/calc.js");
  const map = pnlDayMap([{ key: "2025-11-28", net_pnl: "-120.50" }, { key: "2026-01-02", net_pnl: "1000.25" }, { key: "2026-01-05", net_pnl: "0.00" }]);
  assert.equal(map["2025-11-28"], -120500000n);
  assert.deepEqual(monthsOf(Object.keys(map)), [[2025, 11], [2025, 12], [2026, 1]]);
  assert.deepEqual(monthsOf([]), []);
  const s = monthSummary(cal(2026, 1, map));
  assert.equal(s.total, 1000250000n);
  assert.equal(s.up, 1);
  assert.equal(s.down, 0); // a flat day is neither
  assert.deepEqual(monthSummary(cal(2025, 12, map)), { total: 0n, up: 0, down: 0 });
});

test("options builder: analyze legs feed the payoff maths; the SVG scale maps the box", async () => {
  const { analysisLegs, payoffAt: at, payoffScale } = await import("../../backend/dashboard/static/js/calc.js");
  // An iron condor as the analyze endpoint returns it (strikes as Decimal strings, even "3.145E+4").
  const legs = analysisLegs([
    { instrument: "PE", strike: "3.145E+4", side: "BUY", quantity: 75, premium: "245.85" },
    { instrument: "PE", strike: "3.155E+4", side: "SELL", quantity: 75, premium: "280.35" },
    { instrument: "CE", strike: "3.175E+4", side: "SELL", quantity: 75, premium: "340.60" },
    { instrument: "CE", strike: "3.185E+4", side: "BUY", quantity: 75, premium: "288.75" },
  ]);
  assert.equal(legs[0].strike, 31450);
  assert.ok(Math.abs(at(legs, 31650) - 6476.25) < 1e-6); // the credit between the short strikes
  assert.ok(Math.abs(at(legs, 25000) + 1023.75) < 1e-6); // the max loss below the wings
  assert.ok(Math.abs(at(legs, 31463.65)) < 1); // the server's breakeven
  assert.equal(analysisLegs([{ instrument: "EQ", strike: null, side: "BUY", quantity: 50, premium: "100" }])[0].kind, "FUT");
  const sc = payoffScale([100, 200], [[-50, 150]], 210, 110, 5);
  assert.equal(sc.x(100), 5); assert.equal(sc.x(200), 205);
  assert.equal(sc.y(150), 5); assert.equal(sc.y(-50), 105); assert.equal(sc.y(0), 80);
  assert.equal(payoffScale([1, 2], [[0, 0]], 10, 10, 0).max, 1); // a flat curve still has a height
});

test("deployment P&L: average cost per symbol, partial close, flip, charges, missing quote", async () => {
  const { strategyPnl, dec: d } = await import("../../backend/dashboard/static/js/calc.js");
  const fills = [
    { symbol: "SBIN", side: "BUY", quantity: 10, price: "800", charges: "1.20" },
    { symbol: "SBIN", side: "BUY", quantity: 10, price: "810", charges: "1.20" },
    { symbol: "SBIN", side: "SELL", quantity: 5, price: "820", charges: "0.60" }, // +75 on avg 805
    { symbol: "INFY", side: "SELL", quantity: 2, price: "1500", charges: "0.50" },
    { symbol: "INFY", side: "BUY", quantity: 5, price: "1490", charges: "0.50" }, // +20 on 2, then long 3 @ 1490
  ];
  const r = strategyPnl(fills, new Map([["SBIN", "800.50"], ["INFY", "1495"]]));
  const sbin = r.rows.find((x) => x.symbol === "SBIN");
  assert.equal(sbin.quantity, 15n);
  assert.equal(sbin.average, d("805"));
  assert.equal(sbin.realised, d("75"));
  assert.equal(sbin.unrealised, d("-67.5")); // 15 x (800.50 - 805)
  const infy = r.rows.find((x) => x.symbol === "INFY");
  assert.equal(infy.quantity, 3n);
  assert.equal(infy.average, d("1490"));
  assert.equal(infy.realised, d("20"));
  assert.equal(r.charges, d("4"));
  assert.equal(r.net, d("75") + d("20") + d("-67.5") + d("15") - d("4"));
  const noQuote = strategyPnl(fills.slice(0, 1));
  assert.equal(noQuote.rows[0].unrealised, null);
  assert.equal(noQuote.unrealised, 0n);
});

test("sweep heat map: range ignores nulls, colours run red -> amber -> green", async () => {
  const { matrixRange, heatColor } = await import("../../backend/dashboard/static/js/calc.js");
  assert.deepEqual(matrixRange([[1, null], [-0.5, 2]]), { min: -0.5, max: 2 });
  assert.deepEqual(matrixRange([[null]]), { min: null, max: null });
  assert.equal(heatColor(-0.5, -0.5, 2), "rgb(182, 35, 36)");
  assert.equal(heatColor(2, -0.5, 2), "rgb(46, 160, 67)");
  assert.equal(heatColor(0.75, -0.5, 2), "rgb(210, 153, 34)");
  assert.equal(heatColor(null, 0, 1), "rgb(60, 66, 72)");
  assert.equal(heatColor(3, 3, 3), "rgb(210, 153, 34)"); // a single value sits in the middle
});
