// Backtests: run a saved strategy on the candle store or an uploaded CSV; progress from the
// Socket.IO job events (polling as a fallback); cancel; equity/drawdown charts, trades, CSV export.
import * as api from "../api.js";
import { chartTime, formatINR, formatIST, heatColor, matrixRange, toCSV } from "../calc.js";
import { h, clear, table } from "../dom.js";
import { on } from "../state.js";
import { toast, errorText } from "../ui.js";
import { createChart, LineSeries, AreaSeries } from "../../vendor/lightweight-charts.mjs";

let root = null, current = null, poll = null, csvText = null;

on("job", (j) => { if (current && j.id === current) showProgress(j); });

export async function render(el) {
  root = el;
  clear(root);
  const catalog = await api.get("/strategies/catalog").catch(() => ({ items: [] }));
  const signal = catalog.items.filter((s) => s.kind === "signal");
  const strat = h("select#bt-strategy", {}, signal.map((s) => h("option", { value: s.name, selected: s.name === "sma_crossover" }, s.name)));
  const today = new Date();
  const yearAgo = new Date(today.getTime() - 365 * 86400000);
  const sym = h("input#bt-symbol", { value: "SBIN", size: 10 });
  const interval = h("select#bt-interval", {}, ["1d", "1h", "15m", "5m"].map((i) => h("option", {}, i)));
  const from = h("input#bt-from", { type: "date", value: yearAgo.toISOString().slice(0, 10) });
  const to = h("input#bt-to", { type: "date", value: today.toISOString().slice(0, 10) });
  const params = h("textarea#bt-params", {}, '{"fast": 10, "slow": 30}');
  const cash = h("input#bt-cash", { value: "100000", inputmode: "decimal" });
  const file = h("input#bt-csv", { type: "file", accept: ".csv,text/csv" });
  file.addEventListener("change", async () => { csvText = file.files[0] ? await file.files[0].text() : null; });
  root.append(
    h("h2", {}, "Backtests"),
    h("div.form-grid", {},
      h("label", {}, "Strategy", strat), h("label", {}, "Symbol", sym), h("label", {}, "Interval", interval),
      h("label", {}, "From", from), h("label", {}, "To", to), h("label", {}, "Cash (₹)", cash),
      h("label", {}, "or a CSV (OHLCV)", file)),
    h("label", {}, "Parameters (JSON)", params),
    h("div.row", {},
      h("button#bt-run", { type: "button", onclick: () => run({ strat, sym, interval, from, to, params, cash }) }, "Run backtest"),
      h("button#bt-cancel.secondary", { type: "button", disabled: true, onclick: cancel }, "Cancel")),
    h("div.row", {},
      h("label", {}, "Sweep grid (JSON, two params for a heat map) ", h("input#bt-grid", { size: 36, value: '{"fast": [5, 10, 15], "slow": [20, 30, 40]}' })),
      h("select#bt-metric", { "aria-label": "Heat-map metric" }, ["sharpe", "total_return", "cagr", "max_drawdown", "win_rate", "final_equity"].map((m) => h("option", { value: m }, m))),
      h("button#bt-sweep.secondary", { type: "button", onclick: () => run({ strat, sym, interval, from, to, params, cash, sweep: true }) }, "Run sweep")),
    h("div.row", {}, h("progress#bt-progress", { max: 1, value: 0 }), h("span#bt-status.muted", {}, "")),
    h("div#bt-result"),
    h("h3", {}, "Recent jobs"), h("div#bt-jobs"),
  );
  listJobs();
}

async function listJobs() {
  const page = await api.get("/backtest?limit=10").catch(() => ({ items: [] }));
  const box = root && root.querySelector("#bt-jobs");
  if (!box) return;
  clear(box).append(table([
    { label: "Created", value: (j) => formatIST(j.created_at.endsWith("Z") || j.created_at.includes("+") ? j.created_at : j.created_at + "Z") },
    { label: "Kind", value: (j) => j.kind },
    { label: "Status", value: (j) => j.status },
    { label: "", value: (j) => (j.status === "succeeded" ? h("button.secondary", { type: "button", onclick: () => open(j.id) }, "Show") : "") },
  ], page.items, { empty: "No jobs yet." }));
}

async function run(f) {
  let params;
  try { params = JSON.parse(f.params.value || "{}"); } catch { toast("Parameters must be JSON.", "error"); return; }
  const body = { strategy: f.strat.value, params, cash: f.cash.value.replace(/,/g, "") };
  if (f.sweep) {
    try { body.grid = JSON.parse(root.querySelector("#bt-grid").value); } catch { toast("Sweep grid must be JSON.", "error"); return; }
    body.metric = root.querySelector("#bt-metric").value;
  }
  if (csvText) body.csv = csvText;
  else body.data = { symbol: f.sym.value.trim().toUpperCase(), interval: f.interval.value, start: `${f.from.value}T00:00:00+05:30`, end: `${f.to.value}T23:59:59+05:30` };
  clear(root.querySelector("#bt-result"));
  try {
    const job = await api.send("POST", f.sweep ? "/backtest/sweeps" : "/backtest", body);
    current = job.id;
    root.querySelector("#bt-cancel").disabled = false;
    showProgress(job);
    clearInterval(poll);
    poll = setInterval(async () => { // fallback when an event was missed (reconnect)
      const j = await api.get(`/backtest/${current}`).catch(() => null);
      if (j) showProgress(j);
    }, 2000);
  } catch (err) { toast(errorText(err), "error"); }
}

async function cancel() {
  if (!current) return;
  try { showProgress(await api.del(`/backtest/${current}`)); } catch (err) { toast(errorText(err), "error"); }
}

function showProgress(j) {
  if (!root) return;
  const bar = root.querySelector("#bt-progress");
  bar.value = j.progress || 0;
  root.querySelector("#bt-status").textContent = `${j.status} · ${Math.round((j.progress || 0) * 100)}%`;
  if (["succeeded", "failed", "cancelled"].includes(j.status)) {
    clearInterval(poll);
    root.querySelector("#bt-cancel").disabled = true;
    if (j.status === "succeeded") open(j.id);
    else if (j.error) toast(`${j.error.code}: ${j.error.message}`, "error");
    listJobs();
  }
}

async function open(id) {
  const j = await api.get(`/backtest/${id}`);
  if (j.kind === "sweep") { showSweep(j.result); return; }
  // the job holds a summary; the curve (downsampled for charts) and the trades are their own reads
  const [curve, page] = await Promise.all([
    api.get(`/backtest/${id}/equity?points=1000`),
    api.get(`/backtest/${id}/trades?limit=200`),
  ]);
  const r = { ...j.result, times: curve.time || curve.bar.map(String), equity: curve.equity, drawdown: curve.drawdown_max, trades: page.items };
  const box = clear(root.querySelector("#bt-result"));
  const m = r.metrics;
  const pct = (v) => (v === null || v === undefined ? "—" : `${(v * 100).toFixed(2)}%`);
  box.append(h("div.stats", {},
    [["Final equity", formatINR(m.final_equity)], ["Return", pct(m.total_return)], ["CAGR", pct(m.cagr)],
     ["Sharpe", m.sharpe === null ? "—" : m.sharpe.toFixed(2)], ["Max drawdown", pct(m.max_drawdown)],
     ["Trades", String(m.num_trades)], ["Win rate", pct(m.win_rate)]]
      .map(([k, v]) => h("div.stat", {}, h("span.muted", {}, k), h("strong", {}, v)))));
  const eq = h("div#bt-equity.chart-box.small");
  const dd = h("div#bt-drawdown.chart-box.small");
  box.append(h("h3", {}, "Equity"), eq, h("h3", {}, "Drawdown"), dd);
  const times = curve.time
    ? r.times.map((t) => chartTime(/[zZ]|[+-]\d\d:\d\d$/.test(t) ? t : `${t}Z`))
    : curve.bar; // bars without timestamps: the bar number is the axis
  const series = (values) => {
    const out = []; let last = -Infinity;
    values.forEach((v, i) => { if (v !== null && times[i] > last) { out.push({ time: times[i], value: v }); last = times[i]; } });
    return out;
  };
  const opts = { layout: { background: { color: "#0f1419" }, textColor: "#e6edf3" }, grid: { vertLines: { color: "#1d252d" }, horzLines: { color: "#1d252d" } }, timeScale: { timeVisible: true } };
  const c1 = createChart(eq, { ...opts, autoSize: true });
  c1.addSeries(LineSeries, { color: "#2f81f7" }).setData(series(r.equity));
  c1.timeScale().fitContent();
  const c2 = createChart(dd, { ...opts, autoSize: true });
  c2.addSeries(AreaSeries, { lineColor: "#f85149", topColor: "#f8514933", bottomColor: "#f8514911" }).setData(series(r.drawdown.map((v) => (v === null ? null : v * 100))));
  c2.timeScale().fitContent();
  const cols = Object.keys(r.trades[0] || { entry_bar: 0, exit_bar: 0, entry_price: 0, exit_price: 0, size: 0, pnl: 0 });
  const exportBtn = h("button#bt-export.secondary", { type: "button" }, "Export trades (CSV)");
  exportBtn.addEventListener("click", () => {
    const url = URL.createObjectURL(new Blob([toCSV(r.trades, cols)], { type: "text/csv" }));
    const a = h("a", { href: url, download: `backtest-${id}-trades.csv` });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  });
  box.append(h("div.row", {}, h("h3", {}, `Trades (${m.num_trades ?? r.trades.length}${page.next_cursor ? ", first 200 shown" : ""})`), exportBtn),
    h("div#bt-trades", {}, table(cols.map((c) => ({ label: c, cls: "num", value: (t) => (typeof t[c] === "number" ? String(Math.round(t[c] * 100) / 100) : String(t[c] ?? "")) })), r.trades.slice(0, 200), { empty: "No trades." })));
}

// A sweep: the heat map of the chosen metric over the two swept params (cells coloured worst ->
// best, value as text), the best combination, and every combination's row.
function showSweep(r) {
  const box = clear(root.querySelector("#bt-result"));
  const num = (v) => (v === null || v === undefined ? "—" : Math.abs(v) >= 1000 ? formatINR(v.toFixed(2), { places: 0 }) : v.toFixed(3));
  box.append(h("h3", {}, `Sweep: ${r.strategy}, ${r.completed}/${r.total} combinations${r.cancelled ? " (cancelled)" : ""}, metric ${r.metric}`));
  if (r.best) box.append(h("p#bt-best", {}, `Best: ${Object.entries(r.best.params || {}).map(([k, v]) => `${k}=${v}`).join(", ")} → ${num(r.best.value)}`));
  const hm = r.heatmap;
  if (hm) {
    const { min, max } = matrixRange(hm.matrix);
    const cell = (v) => { const td = h("td.num.heat", {}, num(v)); td.style.backgroundColor = heatColor(v, min, max); return td; };
    box.append(h("div.scroll-x", {}, h("table.heatmap#bt-heatmap", {},
      h("thead", {}, h("tr", {}, h("th", {}, `${hm.y_param} ↓ / ${hm.x_param} →`), hm.x_values.map((x) => h("th.num", {}, String(x))))),
      h("tbody", {}, hm.y_values.map((y, i) => h("tr", {}, h("th.num", {}, String(y)), hm.matrix[i].map(cell)))))));
  } else {
    box.append(h("p.muted", {}, "A heat map needs exactly two swept parameters; the combinations are listed below."));
  }
  const names = r.param_names;
  box.append(table(
    [...names.map((n) => ({ label: n, cls: "num", value: (row) => String(row.params[n]) })),
     { label: r.metric, cls: "num", value: (row) => (row.metrics ? num(row.metrics[r.metric]) : (row.error && row.error.message) || "error") }],
    r.rows, { id: "bt-sweep-rows", empty: "No combinations." }));
}
