// Analytics: the equity curve from the daily snapshots, P&L by day as a month calendar, by symbol
// and by strategy, and the closed-trade statistics (all from /api/v1/analytics).
import * as api from "../api.js";
import { calendarMonth, formatINR, monthSummary, monthsOf, pnlDayMap } from "../calc.js";
import { h, clear, table, signClass } from "../dom.js";
import { state, on, canTrade } from "../state.js";
import { toast, errorText } from "../ui.js";
import { createChart, LineSeries } from "../../vendor/lightweight-charts.mjs";

let root = null;
let chart = null;
let monthIdx = null; // index into the months with P&L; null = the latest
on("account", () => { if (root && !root.hidden) { monthIdx = null; render(root); } });

const pct = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(2)}%`);
const num = (v) => (v === null || v === undefined ? "—" : v.toFixed(2));

export async function render(el) {
  root = el;
  clear(root);
  const from = h("input#an-from", { type: "date", "aria-label": "From" });
  const to = h("input#an-to", { type: "date", "aria-label": "To" });
  const controls = h("div.row", {}, h("label", {}, "From ", from), h("label", {}, "To ", to),
    h("button.secondary", { type: "button", onclick: () => load(from.value, to.value) }, "Show"),
    canTrade() ? h("button#an-snapshot.secondary", {
      type: "button",
      onclick: async () => {
        try {
          const s = await api.send("POST", "/analytics/snapshots", { account_id: state.accountId });
          toast(`Snapshot for ${s.day}: equity ${formatINR(s.equity)}.`, "success");
          load(from.value, to.value);
        } catch (err) { toast(errorText(err), "error"); }
      },
    }, "Take today's snapshot") : null);
  root.append(h("h2", {}, "Analytics"), controls, h("div#an-body"));
  load("", "");
}

async function load(from, to) {
  if (!state.accountId) return;
  const q = (extra) => api.qs({ account_id: state.accountId, from, to, ...extra });
  let perf, byDay, bySym, byStrat, trades;
  try {
    [perf, byDay, bySym, byStrat, trades] = await Promise.all([
      api.get(`/analytics/performance${q()}`),
      api.get(`/analytics/pnl${q({ group_by: "day" })}`),
      api.get(`/analytics/pnl${q({ group_by: "symbol" })}`),
      api.get(`/analytics/pnl${q({ group_by: "strategy" })}`),
      api.get(`/analytics/trades${q()}`),
    ]);
  } catch (err) { toast(errorText(err), "error"); return; }
  const body = clear(root.querySelector("#an-body"));
  const m = perf.metrics || {};
  body.append(h("div.stats#an-stats", {},
    [["Realised P&L", formatINR(perf.realised_pnl, { sign: true })], ["Charges", formatINR(perf.charges)], ["Fills", String(perf.fills)],
     ["Return", pct(m.total_return)], ["Sharpe", num(m.sharpe)], ["Max drawdown", pct(m.max_drawdown)],
     ["Closed trades", String(trades.closed_trades)], ["Win rate", pct(trades.win_rate)], ["Profit factor", num(trades.profit_factor)]]
      .map(([k, v]) => h("div.stat", {}, h("span.muted", {}, k), h("strong", {}, v)))));

  body.append(h("h3", {}, "Equity curve"));
  const box = h("div#an-equity.chart-box.small");
  body.append(box);
  if (chart) { chart.remove(); chart = null; }
  if (perf.dates.length) {
    chart = createChart(box, { autoSize: true, localization: { priceFormatter: (p) => formatINR(p.toFixed(2), { places: 0 }) }, layout: { background: { color: "#0f1419" }, textColor: "#e6edf3" }, grid: { vertLines: { color: "#1d252d" }, horzLines: { color: "#1d252d" } } });
    chart.addSeries(LineSeries, { color: "#2f81f7" }).setData(perf.dates.map((d, i) => ({ time: d, value: Number(perf.equity[i]) })));
    chart.timeScale().fitContent();
  } else {
    box.classList.remove("chart-box", "small");
    box.append(h("p.muted", {}, "No equity snapshots in this range yet (one is taken after each session's close)."));
  }

  body.append(h("h3", {}, "P&L by day (net of charges, IST days)"), calendar(pnlDayMap(byDay.items)));
  const cols = (label) => [
    { label, value: (r) => r.key },
    { label: "Realised", cls: "num", value: (r) => h(`span.${signClass(r.realised_pnl)}`, {}, formatINR(r.realised_pnl, { sign: true })) },
    { label: "Charges", cls: "num", value: (r) => formatINR(r.charges) },
    { label: "Net", cls: "num", value: (r) => h(`span.${signClass(r.net_pnl)}`, {}, formatINR(r.net_pnl, { sign: true })) },
    { label: "Fills", cls: "num", value: (r) => String(r.fills) },
  ];
  body.append(h("div.two", {},
    h("div", {}, h("h3", {}, "By symbol"), table(cols("Symbol"), bySym.items, { id: "an-by-symbol", empty: "No fills yet." })),
    h("div", {}, h("h3", {}, "By strategy"), table(cols("Strategy (- = manual)"), byStrat.items, { id: "an-by-strategy", empty: "No fills yet." }))));
}

function calendar(byDay) {
  const months = monthsOf(Object.keys(byDay));
  if (!months.length) {
    const now = new Date(Date.now() + 19800e3); // IST today
    months.push([now.getUTCFullYear(), now.getUTCMonth() + 1]);
  }
  if (monthIdx === null || monthIdx >= months.length) monthIdx = months.length - 1;
  const [y, mo] = months[monthIdx];
  const weeks = calendarMonth(y, mo, byDay);
  const s = monthSummary(weeks);
  const title = new Date(Date.UTC(y, mo - 1, 1)).toLocaleDateString("en-IN", { month: "long", year: "numeric", timeZone: "UTC" });
  const wrap = h("div#an-calendar");
  const redraw = () => wrap.replaceWith(calendar(byDay));
  wrap.append(h("div.row", {},
    h("button.secondary", { type: "button", disabled: monthIdx === 0, onclick: () => { monthIdx--; redraw(); } }, "‹"),
    h("strong", {}, title),
    h("button.secondary", { type: "button", disabled: monthIdx === months.length - 1, onclick: () => { monthIdx++; redraw(); } }, "›"),
    h(`span.${signClass(s.total)}`, {}, formatINR(s.total, { sign: true })),
    h("span.muted", {}, `${s.up} up · ${s.down} down`)));
  wrap.append(h("table.calendar", {},
    h("thead", {}, h("tr", {}, ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].map((d) => h("th", {}, d)))),
    h("tbody", {}, weeks.map((w) => h("tr", {}, w.map((c) => (c
      ? h(`td.${c.pnl === null ? "none" : signClass(c.pnl) || "flat"}`, { dataset: { day: c.key } },
        h("span.d", {}, String(c.day)), c.pnl === null ? null : h("span.v", {}, formatINR(c.pnl, { places: 0, sign: true })))
      : h("td.blank"))))))));
  return wrap;
}
