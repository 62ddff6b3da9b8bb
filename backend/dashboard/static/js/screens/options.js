// Options: the chain with greeks, OI and IV; a strategy builder on the options analyze endpoint
// (legs, payoff at expiry and today, breakevens, max profit / loss, margin, greeks) and placing
// the structure as one basket. The payoff chart is SVG built with createElementNS (no HTML).
import * as api from "../api.js";
import { analysisLegs, formatINR, formatPrice, formatQty, payoffAt, payoffScale } from "../calc.js";
import { h, clear, table } from "../dom.js";
import { state, canTrade } from "../state.js";
import { toast, errorText, confirmButton } from "../ui.js";

let root = null;
let chain = null;
let catalog = [];
let lastParams = null;

const f2 = (v, d = 2) => (v === null || v === undefined || !Number.isFinite(v) ? "—" : v.toFixed(d));
const money = (v) => (v === "unlimited" ? "unlimited" : formatINR(v));

export async function render(el) {
  root = el;
  clear(root);
  const und = h("input#op-underlying", { value: (chain && chain.underlying) || "NIFTY", size: 12, "aria-label": "Underlying" });
  const exp = h("select#op-expiry", { "aria-label": "Expiry" });
  const load = (expiry) => loadChain(und.value.trim().toUpperCase(), expiry, exp);
  root.append(h("h2", {}, "Options"),
    h("form.row", { onsubmit: (e) => { e.preventDefault(); load(""); } }, und, exp, h("button.secondary", { type: "submit" }, "Load chain")),
    h("div#op-stats.row.muted"), h("div#op-chain.scroll-x"), h("h3", {}, "Strategy builder"), h("div#op-builder"), h("div#op-result"));
  exp.addEventListener("change", () => load(exp.value));
  try { catalog = (await api.get("/strategies/catalog?kind=options")).items; } catch (err) { toast(errorText(err), "error"); }
  await load(chain ? chain.expiry : "");
}

async function loadChain(underlying, expiry, expSelect) {
  try {
    chain = await api.get(`/market-data/option-chain/${encodeURIComponent(underlying)}${api.qs({ expiry })}`);
  } catch (err) { toast(errorText(err), "error"); return; }
  clear(expSelect).append(chain.expiries.map((d) => h("option", { value: d, selected: d === chain.expiry }, d)));
  const spot = Number(chain.spot);
  const atm = chain.rows.reduce((best, r) => (Math.abs(Number(r.strike) - spot) < Math.abs(Number(best.strike) - spot) ? r : best), chain.rows[0] || { strike: 0 });
  clear(root.querySelector("#op-stats")).append(
    `${chain.underlying} spot ${formatPrice(chain.spot)} · expiry ${chain.expiry} · lot ${chain.lot_size} · PCR (OI) ${f2(chain.pcr)}`);
  const side = (k, label, fmt) => ({ label, cls: "num", value: (r) => (r[k] ? fmt(r[k]) : "—") });
  const legCols = (k) => [
    side(k, "OI", (l) => formatQty(l.oi)), side(k, "IV %", (l) => f2(l.iv * 100, 1)), side(k, "Δ", (l) => f2(l.delta, 3)),
    side(k, "Γ", (l) => f2(l.gamma, 4)), side(k, "Θ/day", (l) => f2(l.theta)), side(k, "Vega", (l) => f2(l.vega)), side(k, "LTP", (l) => formatPrice(l.ltp)),
  ];
  const calls = legCols("call").map((c) => ({ ...c, label: `C ${c.label}` }));
  const puts = legCols("put").reverse().map((c) => ({ ...c, label: `P ${c.label}` }));
  clear(root.querySelector("#op-chain")).append(table(
    [...calls, { label: "Strike", cls: "num.strike", value: (r) => formatPrice(r.strike) }, ...puts],
    chain.rows, { id: "op-chain-table", empty: "No strikes.", rowProps: (r) => ({ class: r === atm ? "atm" : "", dataset: { strike: r.strike } }) },
  ));
  builder();
}

function builder() {
  const box = clear(root.querySelector("#op-builder"));
  if (!catalog.length || !chain) return;
  const strat = h("select#op-strategy", { "aria-label": "Strategy" }, catalog.map((c) => h("option", { value: c.name }, c.name.replace(/_/g, " "))));
  const fields = h("span.row");
  const desc = h("p.muted");
  const inputs = {};
  const sync = () => {
    const entry = catalog.find((c) => c.name === strat.value);
    desc.textContent = entry.description;
    clear(fields);
    for (const k of Object.keys(inputs)) delete inputs[k];
    for (const [k, s] of Object.entries(entry.params_schema.properties)) {
      if (k === "underlying" || k === "expiry" || k === "margin_pct") continue;
      const input = h(`input.op-param`, { name: k, size: 7, inputmode: "decimal", placeholder: s.default === null || s.default === undefined ? "auto" : String(s.default), "aria-label": k });
      inputs[k] = { input, type: s.type };
      fields.append(h("label", {}, `${k.replace(/_/g, " ")} `, input));
    }
  };
  strat.addEventListener("change", sync);
  sync();
  const params = () => {
    const p = { underlying: chain.underlying, expiry: chain.expiry };
    for (const [k, { input, type }] of Object.entries(inputs)) {
      const v = input.value.trim();
      if (v !== "") p[k] = type === "integer" ? Number.parseInt(v, 10) : Number(v);
    }
    return p;
  };
  const analyse = async () => {
    lastParams = { name: strat.value, params: params() };
    try {
      const r = await api.send("POST", `/strategies/options/${encodeURIComponent(lastParams.name)}/analyze`, { params: lastParams.params });
      result(r);
    } catch (err) { clear(root.querySelector("#op-result")).append(h("p.error", {}, errorText(err))); }
  };
  box.append(h("form.row", { onsubmit: (e) => { e.preventDefault(); analyse(); } }, strat, fields,
    h("button#op-analyze", { type: "submit" }, "Analyse")), desc);
}

function result(r) {
  const box = clear(root.querySelector("#op-result"));
  box.append(table(
    [
      { label: "Leg", value: (l) => (l.instrument === "EQ" ? "stock" : `${formatPrice(String(Number(l.strike)))} ${l.instrument}`) },
      { label: "Side", value: (l) => h(`span.${l.side === "BUY" ? "pos" : "neg"}`, {}, l.side) },
      { label: "Qty", cls: "num", value: (l) => formatQty(l.quantity) },
      { label: "Premium", cls: "num", value: (l) => formatPrice(l.premium) },
      { label: "IV %", cls: "num", value: (l) => f2(l.iv * 100, 1) },
    ],
    r.legs, { id: "op-legs" },
  ));
  const g = r.greeks || {};
  box.append(h("div.stats#op-summary", {},
    [[`Net premium (${r.premium_type})`, formatINR(String(Math.abs(Number(r.net_premium)).toFixed(2)))], ["Max profit", money(r.max_profit)], ["Max loss", money(r.max_loss)],
     ["Breakevens", r.breakevens.map((b) => formatPrice(b)).join(" · ") || "—"], [`Margin (${r.margin_method === "max_loss" ? "max loss" : "% of spot"})`, formatINR(r.margin)],
     ["Δ (₹/pt)", f2(g.delta)], ["Γ", f2(g.gamma, 4)], ["Θ (₹/day)", f2(g.theta)], ["Vega (₹/vol pt)", f2(g.vega)]]
      .map(([k, v]) => h("div.stat", {}, h("span.muted", {}, k), h("strong", {}, v)))));
  box.append(payoffChart(r));
  // What-if at expiry, computed here from the legs (calc.js payoff maths).
  const legs = analysisLegs(r.legs);
  const at = h("input#op-whatif", { inputmode: "decimal", size: 9, value: String(Number(r.spot)), "aria-label": "Underlying at expiry" });
  const out = h("strong#op-whatif-pnl");
  const upd = () => { const s = Number(at.value.replace(/,/g, "")); out.textContent = Number.isFinite(s) ? formatINR(payoffAt(legs, s).toFixed(2), { sign: true }) : "—"; };
  at.addEventListener("input", upd); upd();
  box.append(h("p.row", {}, `P&L at expiry if ${r.underlying} ends at `, at, " : ", out));
  if (!canTrade()) return;
  const product = h("select#op-product", { "aria-label": "Product" }, h("option", { value: "D" }, "Delivery (D)"), h("option", { value: "I" }, "Intraday (I)"));
  const status = h("p#op-place-status");
  const placed = lastParams;
  const placeBtn = confirmButton(`Place ${r.legs.length} legs as one basket`, "Confirm basket", async () => {
    try {
      const res = await api.send("POST", `/strategies/options/${encodeURIComponent(placed.name)}/place`, { params: placed.params, account_id: state.accountId, product: product.value });
      status.className = "pos";
      status.textContent = `Placed: orders ${res.order_ids.join(", ")}.`;
      toast(`Basket placed (${res.order_ids.length} orders).`, "success");
    } catch (err) {
      status.className = "error";
      status.textContent = `Basket refused, nothing filled: ${errorText(err)}`;
    }
  }, "");
  placeBtn.id = "op-place";
  box.append(h("div.row", {}, product, placeBtn), status);
}

const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const k of kids) el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  return el;
}

function payoffChart(r) {
  const W = 640, H = 240;
  // The server's grid spans ±20 % around the strikes; draw ±8 % of spot (or all of it if that is
  // too few points) so the region between the strikes is readable.
  const spot = Number(r.spot);
  let keep = r.chart.prices.map((p, i) => i).filter((i) => Math.abs(r.chart.prices[i] - spot) <= 0.08 * spot);
  if (keep.length < 10) keep = r.chart.prices.map((p, i) => i);
  const [prices, expiry, today] = [r.chart.prices, r.chart.expiry, r.chart.today].map((a) => keep.map((i) => a[i]));
  const sc = payoffScale(prices, [expiry, today], W, H, 6);
  const line = (vals, cls) => s("polyline", { class: cls, fill: "none", points: prices.map((p, i) => `${sc.x(p).toFixed(1)},${sc.y(vals[i]).toFixed(1)}`).join(" ") });
  const svg = s("svg", { id: "op-payoff", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "Payoff at expiry and today" },
    s("line", { class: "zero", x1: 0, x2: W, y1: sc.y(0), y2: sc.y(0) }),
    s("line", { class: "spot", x1: sc.x(Number(r.spot)), x2: sc.x(Number(r.spot)), y1: 0, y2: H }),
    ...r.breakevens.map((b) => s("circle", { class: "be", cx: sc.x(Number(b)), cy: sc.y(0), r: 4 })),
    line(today, "today"), line(expiry, "expiry"),
    s("text", { x: 8, y: 16 }, `max ${formatINR(sc.max.toFixed(0), { places: 0 })}`),
    s("text", { x: 8, y: H - 8 }, `min ${formatINR(sc.min.toFixed(0), { places: 0 })}`),
    s("text", { x: W - 8, y: H - 8, "text-anchor": "end" }, `${formatPrice(sc.lo.toFixed(0))} – ${formatPrice(sc.hi.toFixed(0))}`));
  return h("figure.payoff", {}, svg, h("figcaption.muted", {}, "Blue: at expiry · dashed: today (Black–Scholes) · line: spot · dots: breakevens"));
}
