// Deployments: your saved strategies, start / stop a live paper deployment, its log, and its live
// P&L (its own fills at average cost, marked to the live quotes; strategyPnl in calc.js).
import * as api from "../api.js";
import { formatINR, formatIST, strategyPnl } from "../calc.js";
import { h, append, clear, table, signClass } from "../dom.js";
import { state, on, emit, canTrade } from "../state.js";
import { toast, errorText, confirmButton } from "../ui.js";

let root = null;
let selected = null; // saved strategy id whose log and P&L are shown
let fills = [];
let pnlBox = null;
const INTERVALS = ["1m", "5m", "15m", "1h", "1d"];

on("quotes", () => { if (pnlBox && root && !root.hidden) paintPnl(); });
on("orders-changed", () => { if (selected && root && !root.hidden) loadDetail(); });

export async function render(el) {
  root = el;
  clear(root);
  root.append(h("h2", {}, "Deployments"), h("div#dep-list"), h("div#dep-detail"));
  if (canTrade()) root.append(await saveForm());
  loadList();
}

async function loadList() {
  let saved;
  try { saved = (await api.get("/strategies?limit=100")).items; } catch (err) { toast(errorText(err), "error"); return; }
  const status = await Promise.all(saved.map((s) => api.get(`/strategies/${s.id}/status`).catch(() => null)));
  const byId = new Map(saved.map((s, i) => [s.id, status[i]]));
  clear(root.querySelector("#dep-list")).append(table(
    [
      { label: "Name", value: (s) => s.name },
      { label: "Strategy", value: (s) => `${s.strategy} v${s.version}` },
      { label: "Symbols", value: (s) => (s.symbols || []).join(", ") },
      { label: "Interval", value: (s) => s.interval },
      { label: "State", value: (s) => { const d = byId.get(s.id); return h(`span.badge.dep-${d ? d.state : "none"}`, {}, d ? d.state : "never deployed"); } },
      { label: "Since", value: (s) => { const d = byId.get(s.id); return d ? formatIST(d.started_at) : "—"; } },
      {
        label: "", value: (s) => {
          const d = byId.get(s.id);
          const running = d && d.state === "running";
          return h("span.actions", {},
            h("button.secondary.show", { type: "button", onclick: () => { selected = s.id; loadDetail(); } }, "Logs & P&L"),
            canTrade() && !running ? h("button.start", {
              type: "button",
              onclick: async () => {
                try {
                  await api.send("POST", `/strategies/${s.id}/deploy`, { account_id: state.accountId });
                  toast(`"${s.name}" deployed.`, "success");
                  selected = s.id; loadList(); loadDetail();
                } catch (err) { toast(errorText(err), "error"); }
              },
            }, "Start") : null,
            canTrade() && running ? confirmButton("Stop", "Confirm stop", async () => {
              try {
                await api.send("POST", `/strategies/${s.id}/stop`);
                toast(`"${s.name}" stopped (its positions are kept).`, "info");
                loadList(); if (selected === s.id) loadDetail();
              } catch (err) { toast(errorText(err), "error"); }
            }) : null);
        },
      },
    ],
    saved, { id: "dep-table", empty: "No saved strategies yet: save one below.", rowProps: (s) => ({ dataset: { strategyId: String(s.id), state: byId.get(s.id) ? byId.get(s.id).state : "none" } }) },
  ));
}

async function loadDetail() {
  const box = clear(root.querySelector("#dep-detail"));
  const id = selected;
  let dep = null, logs = { items: [] }, orders = { items: [] }, trades = { items: [] };
  try {
    [dep, logs] = await Promise.all([
      api.get(`/strategies/${id}/status`).catch(() => null),
      api.get(`/strategies/${id}/logs?limit=50`),
    ]);
    const acc = dep && dep.account_id ? dep.account_id : state.accountId;
    [orders, trades] = await Promise.all([
      api.get(`/orders${api.qs({ account_id: acc, limit: 100 })}`),
      api.get(`/portfolio/trades${api.qs({ account_id: acc, limit: 100 })}`),
    ]);
  } catch (err) { toast(errorText(err), "error"); return; }
  if (id !== selected) return;
  const mine = new Set(orders.items.filter((o) => o.strategy_id === String(id)).map((o) => o.id));
  fills = trades.items.filter((t) => mine.has(t.order_id)).sort((a, b) => (a.executed_at < b.executed_at ? -1 : 1));
  const syms = new Set(fills.map((f) => f.symbol));
  if ([...syms].some((s) => !state.extraSymbols.has(s))) { for (const s of syms) state.extraSymbols.add(s); emit("extra-symbols"); }
  pnlBox = h("div#dep-pnl");
  append(box, [h("h3", {}, `Strategy #${id}: ${dep ? `deployment ${dep.id}, ${dep.state}` : "never deployed"}`),
    dep && dep.error ? h("p.error", {}, dep.error) : null,
    dep ? h("p.muted", {}, `Bars processed: ${dep.runtime.bars ?? 0} · orders sent: ${dep.runtime.orders ?? 0}`) : null,
    pnlBox,
    h("h3", {}, "Log"),
    table([
      { label: "Time", value: (l) => formatIST(l.created_at) },
      { label: "Level", value: (l) => h(`span.log-${l.level}`, {}, l.level) },
      { label: "Event", value: (l) => l.event },
      { label: "Message", value: (l) => l.message },
    ], logs.items, { id: "dep-logs", empty: "No log entries." })]); // dom.js append skips the nulls
  paintPnl();
}

function paintPnl() {
  const ltps = new Map([...state.quotes].map(([s, q]) => [s, q.ltp]));
  const r = strategyPnl(fills, ltps);
  const signed = (v) => (v === null ? h("span", {}, "—") : h(`span.${signClass(v)}`, {}, formatINR(v, { sign: true })));
  clear(pnlBox).append(
    h("div.stats", {}, [["Live P&L (net)", r.net], ["Realised", r.realised], ["Unrealised", r.unrealised], ["Charges", -r.charges]]
      .map(([k, v]) => h("div.stat", {}, h("span.muted", {}, k), h("strong.dep-" + k.split(" ")[0].toLowerCase(), {}, signed(v))))),
    table([
      { label: "Symbol", value: (p) => p.symbol },
      { label: "Qty", cls: "num", value: (p) => p.quantity.toString() },
      { label: "Avg", cls: "num", value: (p) => (p.quantity === 0n ? "—" : formatINR(p.average)) },
      { label: "Realised", cls: "num", value: (p) => signed(p.realised) },
      { label: "Unrealised", cls: "num", value: (p) => signed(p.unrealised) },
    ], r.rows, { id: "dep-positions", empty: "No fills from this strategy yet." }));
}

async function saveForm() {
  const catalog = await api.get("/strategies/catalog?kind=signal").catch(() => ({ items: [] }));
  const name = h("input#dep-name", { placeholder: "Name", maxlength: 128 });
  const strat = h("select#dep-strategy", {}, catalog.items.map((c) => h("option", { value: c.name }, c.name)));
  const symbols = h("input#dep-symbols", { placeholder: "Symbols (SBIN, INFY)", size: 18 });
  const interval = h("select#dep-interval", {}, INTERVALS.map((i) => h("option", { value: i }, i)));
  const qty = h("input#dep-qty", { placeholder: "Qty", inputmode: "numeric", size: 5, value: "1" });
  const params = h("input#dep-params", { placeholder: 'params JSON, e.g. {"fast": 5, "slow": 20}', size: 30 });
  const err = h("p.error");
  return h("form#dep-form", {
    onsubmit: async (e) => {
      e.preventDefault();
      let p = {};
      try { p = params.value.trim() ? JSON.parse(params.value) : {}; } catch { err.textContent = "params: not valid JSON"; return; }
      try {
        const s = await api.send("POST", "/strategies", {
          name: name.value.trim(), strategy: strat.value, params: p, interval: interval.value,
          symbols: symbols.value.split(/[\s,]+/).filter(Boolean).map((x) => x.toUpperCase()),
          quantity: Number.parseInt(qty.value, 10) || 1, account_id: state.accountId,
        });
        toast(`Saved "${s.name}".`, "success");
        err.textContent = ""; name.value = "";
        loadList();
      } catch (e2) { err.textContent = errorText(e2); }
    },
  }, h("h3", {}, "Save a strategy to deploy"), h("div.row", {}, name, strat, symbols, interval, qty, params, h("button#dep-save", { type: "submit" }, "Save")), err);
}
