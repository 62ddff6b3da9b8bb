// Chart: candles from /market-data/candles with lightweight-charts, 1m..1W (30m and 1W aggregated
// here), the time axis in IST, indicator overlays from /market-data/indicators, the user's fills and
// working orders as markers/price lines, and the last bar updated by live quotes.
import * as api from "../api.js";
import { applyTick, chartTime, CHART_INTERVALS, toBars } from "../calc.js";
import { h, clear } from "../dom.js";
import { state, on, emit } from "../state.js";
import { toast, errorText } from "../ui.js";
import { createChart, CandlestickSeries, HistogramSeries, LineSeries, createSeriesMarkers } from "../../vendor/lightweight-charts.mjs";

const SECONDS = { "1m": 60, "5m": 300, "15m": 900, "30m": 1800, "1h": 3600, "1D": 86400, "1W": 604800 };
const SPAN_DAYS = { "1m": 2, "5m": 7, "15m": 20, "30m": 30, "1h": 60, "1D": 365, "1W": 1500 };
const OVERLAYS = { none: null, "SMA 20": { name: "sma", period: 20 }, "EMA 20": { name: "ema", period: 20 }, "Bollinger 20/2": { name: "bollinger", period: 20, k: 2 }, VWAP: { name: "vwap" } };
let root = null, chart = null, candles = null, volume = null, bars = [], interval = "5m", overlay = "none", lines = [], priceLines = [];

on("quotes", (ticked) => {
  if (!chart || !root || root.hidden) return;
  const q = ticked.get(state.chartSymbol);
  if (!q || !bars.length) return;
  const bar = applyTick(bars, q.ts, q.ltp, SECONDS[interval]);
  if (bar) candles.update(bar);
});

export function render(el) {
  root = el;
  clear(root);
  const sym = h("input#chart-symbol", { value: state.chartSymbol || "", placeholder: "Symbol", size: 10 });
  sym.addEventListener("change", () => { state.chartSymbol = sym.value.trim().toUpperCase(); load(); });
  const ivs = h("span.intervals", {}, Object.keys(CHART_INTERVALS).map((iv) =>
    h(`button.secondary${iv === interval ? ".active" : ""}`, { type: "button", dataset: { interval: iv }, onclick: (e) => {
      interval = iv;
      for (const b of ivs.children) b.classList.toggle("active", b.dataset.interval === iv);
      load();
    } }, iv)));
  const ov = h("select#chart-overlay", { "aria-label": "Indicator" }, Object.keys(OVERLAYS).map((k) => h("option", { selected: k === overlay }, k)));
  ov.addEventListener("change", () => { overlay = ov.value; load(); });
  const box = h("div#chart-box.chart-box");
  root.append(h("h2", {}, "Chart"), h("div.row", {}, sym, ivs, ov,
    h("button.buy", { type: "button", onclick: () => emit("open-ticket", { symbol: state.chartSymbol, side: "BUY" }) }, "Buy"),
    h("button.sell", { type: "button", onclick: () => emit("open-ticket", { symbol: state.chartSymbol, side: "SELL" }) }, "Sell")),
    box, h("p.muted", {}, "Times in IST. Markers: your fills (▲ buy, ▼ sell); dashed lines: working orders."));
  if (chart) { chart.remove(); chart = null; }
  chart = createChart(box, {
    autoSize: true,
    layout: { background: { color: "#0f1419" }, textColor: "#e6edf3" },
    grid: { vertLines: { color: "#1d252d" }, horzLines: { color: "#1d252d" } },
    timeScale: { timeVisible: true, secondsVisible: false },
  });
  candles = chart.addSeries(CandlestickSeries, { upColor: "#2ea043", downColor: "#f85149", wickUpColor: "#2ea043", wickDownColor: "#f85149", borderVisible: false });
  volume = chart.addSeries(HistogramSeries, { priceScaleId: "vol", priceFormat: { type: "volume" }, color: "#26313b" });
  chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  load();
}

async function load() {
  const symbol = state.chartSymbol;
  if (!symbol || !chart) return;
  state.extraSymbols.add(symbol);
  emit("extra-symbols");
  const spec = CHART_INTERVALS[interval];
  const from = new Date(Date.now() - SPAN_DAYS[interval] * 86400000).toISOString();
  try {
    const data = await api.get(`/market-data/candles/${encodeURIComponent(symbol)}${api.qs({ interval: spec.api, from })}`);
    bars = toBars(data.candles, interval);
    candles.setData(bars.map(({ volume: _v, ...b }) => b));
    volume.setData(bars.map((b) => ({ time: b.time, value: b.volume })));
    await drawOverlay(symbol, spec.api, from);
    await drawMarkers(symbol);
    chart.timeScale().fitContent();
  } catch (err) { toast(errorText(err), "error"); }
}

async function drawOverlay(symbol, apiInterval, from) {
  for (const s of lines) chart.removeSeries(s);
  lines = [];
  const o = OVERLAYS[overlay];
  if (!o || CHART_INTERVALS[interval].bucket || CHART_INTERVALS[interval].week) return; // overlays on native intervals only
  const ind = await api.get(`/market-data/indicators/${encodeURIComponent(symbol)}${api.qs({ interval: apiInterval, from, ...o })}`);
  const colors = ["#d29922", "#a371f7", "#79c0ff", "#ff7b72"];
  Object.entries(ind.values).forEach(([name, values], i) => {
    const s = chart.addSeries(LineSeries, { color: colors[i % colors.length], lineWidth: 1, title: name, priceLineVisible: false, lastValueVisible: false });
    s.setData(ind.ts.map((t, j) => ({ time: chartTime(t), value: values[j] })).filter((p) => p.value !== null));
    lines.push(s);
  });
}

async function drawMarkers(symbol) {
  const [trades, orders] = await Promise.all([
    api.get(`/portfolio/trades${api.qs({ account_id: state.accountId, symbol, limit: 200 })}`),
    api.get(`/orders${api.qs({ account_id: state.accountId, symbol, status: "open,trigger_pending,partially_filled", limit: 100 })}`),
  ]);
  const size = SECONDS[interval];
  const first = bars.length ? bars[0].time : 0;
  const markers = trades.items
    .map((t) => ({ t: chartTime(t.executed_at), tr: t }))
    .filter(({ t }) => t >= first)
    .map(({ t, tr }) => ({
      time: t - ((t - first) % size), position: tr.side === "BUY" ? "belowBar" : "aboveBar",
      color: tr.side === "BUY" ? "#2ea043" : "#f85149", shape: tr.side === "BUY" ? "arrowUp" : "arrowDown",
      text: `${tr.side} ${tr.quantity}`,
    }))
    .sort((a, b) => a.time - b.time);
  createSeriesMarkers(candles, markers);
  for (const pl of priceLines) candles.removePriceLine(pl);
  priceLines = orders.items.filter((o) => o.price || o.trigger_price).map((o) => candles.createPriceLine({
    price: Number(o.price || o.trigger_price), color: o.side === "BUY" ? "#2ea043" : "#f85149", lineStyle: 2, lineWidth: 1,
    axisLabelVisible: true, title: `${o.side} ${o.quantity} ${o.type}`,
  }));
}
