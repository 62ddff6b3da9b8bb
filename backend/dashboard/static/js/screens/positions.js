// Positions and holdings with live P&L from the quote stream, stops, close and close-all.
import * as api from "../api.js";
import { formatINR, formatPrice, formatQty, marketValue, sum, unrealisedPnl } from "../calc.js";
import { h, clear, table, signClass } from "../dom.js";
import { state, on, emit, canTrade } from "../state.js";
import { toast, errorText, confirmButton } from "../ui.js";

let root = null;
const cells = new Map(); // `${symbol}|${product}` -> {ltp, pnl, position}
const holdingCells = new Map(); // symbol -> {value, pnl, holding}
let totalCell = null;

on("positions-changed", () => load());
on("account", () => load());
on("summary-data", (s) => {
  if (!root || root.hidden) return;
  const box = root.querySelector("#summary");
  if (!box) return;
  clear(box).append(...[
    ["Equity", s.equity], ["Cash", s.cash], ["Available", s.available_cash], ["Margin used", s.margin_used],
    ["Realised P&L", s.realised_pnl, true], ["Unrealised P&L", s.unrealised_pnl, true], ["Day P&L", s.day_pnl, true],
  ].map(([k, v, signed]) => h("div.stat", {}, h("span.muted", {}, k), h(`strong.${signed ? signClass(Number(v)) : ""}`, {}, formatINR(v, { sign: signed })))));
});

// live P&L: every painted quote frame recomputes the rows of the symbols that ticked (exact decimals)
on("quotes", (ticked) => {
  for (const c of holdingCells.values()) {
    const q = ticked.get(c.holding.symbol);
    if (!q) continue;
    c.value.textContent = formatINR(marketValue(c.holding.quantity, q.ltp));
    const pnl = unrealisedPnl(c.holding.quantity, c.holding.average_price, q.ltp);
    c.pnl.textContent = formatINR(pnl, { sign: true });
    c.pnl.className = `pnl ${signClass(pnl)}`;
  }
  if (!cells.size) return;
  let changed = false;
  for (const c of cells.values()) {
    const q = ticked.get(c.position.symbol);
    if (!q) continue;
    c.position.ltp = q.ltp;
    c.ltp.textContent = formatPrice(q.ltp);
    const pnl = unrealisedPnl(c.position.quantity, c.position.average_price, q.ltp);
    c.position.unrealised_pnl = pnl;
    c.pnl.textContent = formatINR(pnl, { sign: true });
    c.pnl.className = `pnl ${signClass(pnl)}`;
    changed = true;
  }
  if (changed && totalCell) paintTotal();
});

function paintTotal() {
  const total = sum([...cells.values()].map((c) => c.position.unrealised_pnl));
  totalCell.textContent = formatINR(total, { sign: true });
  totalCell.className = `num ${signClass(total)}`;
}

export function render(el) {
  root = el;
  clear(root);
  root.append(
    h("h2", {}, "Positions"),
    h("div#summary.stats"),
    h("div.row", {}, canTrade() ? confirmButton("Close all", "Confirm close all", closeAll) : null),
    h("div#positions-wrap"),
    h("h3", {}, "Holdings (delivery)"),
    h("div#holdings-wrap"),
  );
  root.querySelector(".row .danger")?.setAttribute("id", "close-all");
  emit("summary");
  load();
}

async function closeAll() {
  try {
    const r = await api.send("POST", `/portfolio/positions/close-all${api.qs({ account_id: state.accountId })}`);
    toast(`Closing ${r.orders.length} position(s).`);
  } catch (err) { toast(errorText(err), "error"); }
  load(); emit("summary");
}

async function load() {
  if (!state.accountId) return;
  let positions, holdings;
  try {
    [positions, holdings] = await Promise.all([
      api.get(`/portfolio/positions${api.qs({ account_id: state.accountId })}`),
      api.get(`/portfolio/holdings${api.qs({ account_id: state.accountId })}`),
    ]);
  } catch (err) { return; }
  state.positions = positions;
  // keep every open position's symbol in the live subscription, whichever screen is open
  state.extraSymbols = new Set([...(state.chartSymbol ? [state.chartSymbol] : []), ...positions.map((p) => p.symbol)]);
  emit("extra-symbols");
  if (!root) return;
  const wrap = root.querySelector("#positions-wrap");
  if (!wrap) return;
  cells.clear();
  holdingCells.clear();
  const t = table(
    [
      { label: "Symbol", value: (p) => p.symbol },
      { label: "Product", value: (p) => (p.product === "I" ? "Intraday" : "Delivery") },
      { label: "Qty", cls: "num", value: (p) => formatQty(p.quantity) },
      { label: "Avg", cls: "num", value: (p) => formatPrice(p.average_price) },
      { label: "LTP", cls: "num", value: (p) => cell(p, "ltp", h("span.ltp", {}, formatPrice(p.ltp))) },
      { label: "P&L", cls: "num", value: (p) => cell(p, "pnl", h(`span.pnl.${signClass(Number(p.unrealised_pnl))}`, {}, formatINR(p.unrealised_pnl, { sign: true }))) },
      { label: "Stops", value: (p) => stopsControl(p) },
      { label: "", value: (p) => (canTrade() ? h("button.secondary.close", { type: "button", onclick: () => closeOne(p) }, "Close") : "") },
    ],
    positions, { id: "positions-table", empty: "No open positions.", rowProps: (p) => ({ dataset: { symbol: p.symbol, product: p.product } }) },
  );
  totalCell = h("td.num");
  if (positions.length) t.append(h("tfoot", {}, h("tr", {}, h("th", { colSpan: 5 }, "Unrealised total"), totalCell, h("td", { colSpan: 2 }))));
  clear(wrap).append(t);
  if (positions.length) paintTotal();
  clear(root.querySelector("#holdings-wrap")).append(table(
    [
      { label: "Symbol", value: (p) => p.symbol },
      { label: "Qty", cls: "num", value: (p) => formatQty(p.quantity) },
      { label: "Avg", cls: "num", value: (p) => formatPrice(p.average_price) },
      { label: "Value", cls: "num", value: (p) => holdingCell(p, "value", h("span.value", {}, formatINR(p.market_value))) },
      { label: "P&L", cls: "num", value: (p) => holdingCell(p, "pnl", h(`span.pnl.${signClass(Number(p.unrealised_pnl))}`, {}, formatINR(p.unrealised_pnl, { sign: true }))) },
    ],
    holdings, { id: "holdings-table", empty: "No holdings.", rowProps: (p) => ({ dataset: { symbol: p.symbol } }) },
  ));
}

// holdings P&L moves with the same quote frames as positions
function holdingCell(p, kind, span) {
  const c = holdingCells.get(p.symbol) || { holding: { ...p } };
  c[kind] = span;
  holdingCells.set(p.symbol, c);
  return span;
}

function cell(p, kind, td) {
  const key = `${p.symbol}|${p.product}`;
  const c = cells.get(key) || { position: { ...p } };
  c[kind] = td;
  cells.set(key, c);
  return td;
}

async function closeOne(p) {
  try {
    const o = await api.send("POST", `/portfolio/positions/${encodeURIComponent(p.symbol)}/close${api.qs({ account_id: state.accountId })}`);
    toast(`Close order ${o.id}: ${o.side} ${o.quantity} ${o.symbol} ${o.status}`, o.status === "rejected" ? "error" : "success");
  } catch (err) { toast(errorText(err), "error"); }
  load(); emit("summary"); emit("orders-changed");
}

function stopsControl(p) {
  const s = p.stops || {};
  const sl = h("input.st-sl", { placeholder: "SL", size: 6, value: s.stop_loss || "", inputmode: "decimal", "aria-label": "Stop-loss" });
  const tp = h("input.st-tp", { placeholder: "Target", size: 6, value: s.take_profit || "", inputmode: "decimal", "aria-label": "Target" });
  const tr = h("input.st-tr", { placeholder: "Trail %", size: 5, value: s.trailing_pct || "", inputmode: "decimal", "aria-label": "Trailing %" });
  if (!canTrade()) { sl.disabled = tp.disabled = tr.disabled = true; }
  const save = h("button.secondary", { type: "button", disabled: !canTrade() }, "Set");
  save.addEventListener("click", async () => {
    const v = (i) => (i.value.trim() ? i.value.trim() : null);
    try {
      await api.send("PUT", `/portfolio/positions/${encodeURIComponent(p.symbol)}/stops${api.qs({ account_id: state.accountId })}`,
        { stop_loss: v(sl), take_profit: v(tp), trailing_pct: v(tr) });
      toast(`Stops on ${p.symbol} saved.`, "success");
    } catch (err) { toast(errorText(err), "error"); }
  });
  return h("span.stops", {}, sl, tp, tr, save);
}
