// Order book and trades: filters, inline modify, cancel, cancel all.
import * as api from "../api.js";
import { formatINR, formatIST, formatPrice, formatQty } from "../calc.js";
import { h, clear, table } from "../dom.js";
import { state, on, canTrade } from "../state.js";
import { toast, errorText, confirmButton } from "../ui.js";

const WORKING = "pending,open,trigger_pending,partially_filled";
const filters = { status: WORKING, symbol: "" };
let root = null;

on("orders-changed", () => { if (root && !root.hidden) load(); });
on("account", () => { if (root && !root.hidden) load(); });

export function render(el) {
  root = el;
  clear(root);
  const status = h("select#of-status", { "aria-label": "Status filter" },
    [["Working", WORKING], ["All", ""], ["Filled", "filled"], ["Cancelled", "cancelled"], ["Rejected", "rejected"]]
      .map(([l, v]) => h("option", { value: v, selected: v === filters.status }, l)));
  const symbol = h("input#of-symbol", { placeholder: "Symbol", value: filters.symbol, size: 10 });
  status.addEventListener("change", () => { filters.status = status.value; load(); });
  symbol.addEventListener("change", () => { filters.symbol = symbol.value.trim().toUpperCase(); load(); });
  root.append(
    h("h2", {}, "Orders"),
    h("div.row", {}, status, symbol,
      canTrade() ? confirmButton("Cancel all", "Confirm cancel all", cancelAll) : null),
    h("div#orders-table-wrap"),
    h("h3", {}, "Trades"),
    h("div#trades-table-wrap"),
  );
  root.querySelector(".row .danger")?.setAttribute("id", "cancel-all");
  load();
}

async function cancelAll() {
  try {
    const r = await api.del(`/orders${api.qs({ account_id: state.accountId, symbol: filters.symbol })}`);
    toast(`Cancelled ${r.cancelled} order(s).`, "info");
    load();
  } catch (err) { toast(errorText(err), "error"); }
}

async function load() {
  if (!root || !state.accountId) return;
  const [orders, trades] = await Promise.all([
    api.get(`/orders${api.qs({ account_id: state.accountId, status: filters.status, symbol: filters.symbol, limit: 100 })}`),
    api.get(`/portfolio/trades${api.qs({ account_id: state.accountId, symbol: filters.symbol, limit: 100 })}`),
  ]).catch((err) => { toast(errorText(err), "error"); return [{ items: [] }, { items: [] }]; });
  const wrap = root.querySelector("#orders-table-wrap");
  if (!wrap) return;
  clear(wrap).append(table(
    [
      { label: "Time", value: (o) => formatIST(o.created_at, { timeOnly: true }) },
      { label: "Symbol", value: (o) => o.symbol },
      { label: "Side", value: (o) => h(`span.${o.side === "BUY" ? "pos" : "neg"}`, {}, o.side) },
      { label: "Type", value: (o) => `${o.type} ${o.product}` },
      { label: "Qty", cls: "num", value: (o) => `${formatQty(o.filled_quantity)}/${formatQty(o.quantity)}` },
      { label: "Price", cls: "num", value: (o) => (o.price ? formatPrice(o.price) : o.average_price ? formatPrice(o.average_price) : "MKT") },
      { label: "Trigger", cls: "num", value: (o) => (o.trigger_price ? formatPrice(o.trigger_price) : "") },
      { label: "Status", value: (o) => h(`span.status.${o.status}`, { title: o.status_message || "" }, o.status) },
      { label: "", value: (o) => (canTrade() && o.pending_quantity > 0 ? actions(o) : "") },
    ],
    orders.items, { id: "orders-table", empty: "No orders match.", rowProps: (o) => ({ dataset: { orderId: String(o.id), status: o.status } }) },
  ));
  clear(root.querySelector("#trades-table-wrap")).append(table(
    [
      { label: "Time", value: (t) => formatIST(t.executed_at) },
      { label: "Symbol", value: (t) => t.symbol },
      { label: "Side", value: (t) => t.side },
      { label: "Qty", cls: "num", value: (t) => formatQty(t.quantity) },
      { label: "Price", cls: "num", value: (t) => formatPrice(t.price) },
      { label: "Charges", cls: "num", value: (t) => formatINR(t.charges) },
      { label: "Realised", cls: "num", value: (t) => formatINR(t.realised_pnl, { sign: true }) },
    ],
    trades.items, { id: "trades-table", empty: "No trades yet." },
  ));
}

function actions(o) {
  const box = h("span.actions");
  const modify = h("button.secondary.modify", { type: "button" }, "Modify");
  const cancel = h("button.secondary.cancel", { type: "button" }, "Cancel");
  modify.addEventListener("click", () => {
    clear(box);
    const qty = h("input.m-qty", { type: "number", min: 1, value: String(o.quantity), size: 5, "aria-label": "Quantity" });
    const price = o.price ? h("input.m-price", { value: o.price, size: 8, inputmode: "decimal", "aria-label": "Price" }) : null;
    const trig = o.trigger_price ? h("input.m-trigger", { value: o.trigger_price, size: 8, inputmode: "decimal", "aria-label": "Trigger" }) : null;
    const save = h("button", { type: "button" }, "Save");
    save.addEventListener("click", async () => {
      const body = {};
      if (Number(qty.value) !== o.quantity) body.quantity = Number(qty.value);
      if (price && price.value !== o.price) body.price = price.value.trim();
      if (trig && trig.value !== o.trigger_price) body.trigger_price = trig.value.trim();
      if (!Object.keys(body).length) { load(); return; }
      try { await api.send("PATCH", `/orders/${o.id}`, body); toast(`Order ${o.id} modified.`); } catch (err) { toast(errorText(err), "error"); }
      load();
    });
    box.append(qty, price, trig, save, h("button.secondary", { type: "button", onclick: load }, "×"));
  });
  cancel.addEventListener("click", async () => {
    cancel.disabled = true;
    try { await api.del(`/orders/${o.id}`); toast(`Order ${o.id} cancelled.`); } catch (err) { toast(errorText(err), "error"); }
    load();
  });
  box.append(modify, cancel);
  return box;
}
