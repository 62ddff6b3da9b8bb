// Pure client-side computing: decimal money, Indian grouping, IST time, P&L, candle aggregation,
// option payoff, order bodies. No DOM, no network: unit-tested with `node --test` (frontend/tests).

// ---------------------------------------------------------------- exact decimals (money)
// Prices and amounts arrive as decimal strings; they are kept as BigInt at a fixed scale so P&L
// is exact (no float money in the browser either).
export const SCALE = 6;
const TEN = 10n;
const ONE = TEN ** BigInt(SCALE);

/** Decimal string / number / bigint(scaled) -> BigInt scaled by 10^SCALE (half away from zero). */
export function dec(value) {
  if (typeof value === "bigint") return value;
  if (value === null || value === undefined || value === "") return null;
  let s = typeof value === "number" ? value.toFixed(SCALE + 2) : String(value).trim();
  let neg = false;
  if (s.startsWith("-")) { neg = true; s = s.slice(1); } else if (s.startsWith("+")) s = s.slice(1);
  if (!/^\d*(\.\d*)?$/.test(s) || s === "" || s === ".") return null;
  const [ip, fp = ""] = s.split(".");
  const head = fp.slice(0, SCALE).padEnd(SCALE, "0");
  let n = BigInt(ip || "0") * ONE + BigInt(head || "0");
  if (fp.length > SCALE && fp[SCALE] >= "5") n += 1n;
  return neg ? -n : n;
}

/** Round a scaled BigInt to ``places`` decimals (half away from zero), returned still scaled. */
export function roundScaled(n, places) {
  const unit = TEN ** BigInt(SCALE - places);
  const half = unit / 2n;
  const q = (n < 0n ? -n : n) + half;
  const r = (q / unit) * unit;
  return n < 0n ? -r : r;
}

/** Scaled BigInt -> plain decimal string with ``places`` decimals ("-1234.50"). */
export function decString(n, places = 2) {
  const r = roundScaled(n, places);
  const neg = r < 0n;
  const a = neg ? -r : r;
  const ip = a / ONE;
  const fp = (a % ONE).toString().padStart(SCALE, "0").slice(0, places);
  return `${neg ? "-" : ""}${ip}${places ? "." + fp : ""}`;
}

/** "1234567" -> "12,34,567": the last three digits, then groups of two (the Indian system). */
export function groupIndian(digits) {
  if (digits.length <= 3) return digits;
  const last = digits.slice(-3);
  let rest = digits.slice(0, -3);
  const parts = [];
  while (rest.length > 2) { parts.unshift(rest.slice(-2)); rest = rest.slice(0, -2); }
  if (rest) parts.unshift(rest);
  return `${parts.join(",")},${last}`;
}

/** Amount with Indian grouping and ₹: "₹1,00,000.00", "-₹12.50"; ``sign``: "+₹" for gains. */
export function formatINR(value, { places = 2, sign = false, symbol = true } = {}) {
  const n = dec(value);
  if (n === null) return "—";
  const s = decString(n, places);
  const neg = s.startsWith("-");
  const body = neg ? s.slice(1) : s;
  const [ip, fp] = body.split(".");
  const isZero = /^[0.]*$/.test(body);
  const prefix = neg && !isZero ? "-" : sign && !isZero ? "+" : "";
  return `${prefix}${symbol ? "₹" : ""}${groupIndian(ip)}${fp !== undefined ? "." + fp : ""}`;
}

/** A price without the currency sign (tables of quotes): "1,234.55". */
export function formatPrice(value, places = 2) {
  return formatINR(value, { places, symbol: false });
}

/** Integer quantity with Indian grouping; negative (short) keeps its sign. */
export function formatQty(q) {
  const n = Number(q);
  if (!Number.isFinite(n)) return "—";
  const s = String(Math.trunc(Math.abs(n)));
  return `${n < 0 ? "-" : ""}${groupIndian(s)}`;
}

// ---------------------------------------------------------------- P&L
/** Unrealised P&L of a position at ``ltp``: (ltp - average) * quantity (short: quantity < 0). */
export function unrealisedPnl(quantity, averagePrice, ltp) {
  const a = dec(averagePrice), l = dec(ltp);
  if (a === null || l === null) return null;
  return (l - a) * BigInt(quantity);
}

/** Market value of ``quantity`` at ``ltp`` (scaled BigInt, exact), or null without a price. */
export function marketValue(quantity, ltp) {
  const l = dec(ltp);
  return l === null ? null : l * BigInt(quantity);
}

/** Sum of scaled BigInts, skipping nulls. */
export function sum(values) {
  return values.reduce((acc, v) => (v === null || v === undefined ? acc : acc + dec(v)), 0n);
}

/** Change and % change vs a reference price; pct as a string with 2 decimals. */
export function change(ltp, ref) {
  const l = dec(ltp), r = dec(ref);
  if (l === null || r === null || r === 0n) return { abs: null, pct: null };
  const abs = l - r;
  const pct = (abs * 10000n * ONE) / r; // percent * 100, scaled
  return { abs, pct: decString(roundScaled(pct / 100n, 2), 2) };
}

// ---------------------------------------------------------------- time (IST)
export const IST_OFFSET_SECONDS = 19800; // Asia/Kolkata is UTC+05:30 all year (no DST)
const istFmt = new Intl.DateTimeFormat("en-IN", {
  timeZone: "Asia/Kolkata", year: "numeric", month: "short", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});
const istTime = new Intl.DateTimeFormat("en-IN", {
  timeZone: "Asia/Kolkata", hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});

/** ISO string or epoch ms -> "02 Jan 2025, 09:30:01 IST" (time only with ``timeOnly``). */
export function formatIST(value, { timeOnly = false } = {}) {
  if (value === null || value === undefined || value === "") return "—";
  const d = typeof value === "number" ? new Date(value) : new Date(value);
  if (Number.isNaN(d.getTime())) return "—";
  return `${(timeOnly ? istTime : istFmt).format(d)} IST`;
}

/** The chart's time for a UTC instant: lightweight-charts draws UTC, so shift by +05:30 to show IST. */
export function chartTime(iso) {
  return Math.floor(Date.parse(iso) / 1000) + IST_OFFSET_SECONDS;
}

/** IST calendar day "YYYY-MM-DD" of an instant. */
export function istDay(iso) {
  const t = new Date(Date.parse(iso) + IST_OFFSET_SECONDS * 1000);
  return t.toISOString().slice(0, 10);
}

// ---------------------------------------------------------------- candles
// What the candles API serves natively, and what is aggregated here from a finer interval.
export const CHART_INTERVALS = {
  "1m": { api: "1m" }, "5m": { api: "5m" }, "15m": { api: "15m" },
  "30m": { api: "15m", bucket: 1800 }, "1h": { api: "1h" },
  "1D": { api: "1d" }, "1W": { api: "1d", week: true },
};

/** Bucket start (chart seconds, IST-shifted) of a bar for aggregation. */
function bucketOf(t, spec) {
  if (spec.week) {
    const day = Math.floor(t / 86400);
    const weekday = (day + 3) % 7; // 1970-01-01 was a Thursday; 0 = Monday
    return (day - weekday) * 86400;
  }
  return t - (t % spec.bucket);
}

/**
 * API candles [{ts, open, high, low, close, volume}] -> lightweight-charts bars
 * [{time, open, high, low, close}] + volumes, aggregated for 30m (from 15m) and 1W (from 1D,
 * weeks starting Monday IST). Prices become numbers here: they are only drawn.
 */
export function toBars(candles, interval) {
  const spec = CHART_INTERVALS[interval] || { api: interval };
  const out = [];
  for (const c of candles) {
    const t = chartTime(c.ts);
    const bar = { time: t, open: +c.open, high: +c.high, low: +c.low, close: +c.close, volume: +c.volume || 0 };
    if (!spec.bucket && !spec.week) { out.push(bar); continue; }
    const b = bucketOf(t, spec);
    const last = out[out.length - 1];
    if (last && last.time === b) {
      last.high = Math.max(last.high, bar.high);
      last.low = Math.min(last.low, bar.low);
      last.close = bar.close;
      last.volume += bar.volume;
    } else {
      out.push({ ...bar, time: b });
    }
  }
  return out;
}

/** Update the last bar with a live tick (or open a new one when the tick starts a new bar). */
export function applyTick(bars, tickIso, ltp, intervalSeconds) {
  if (!bars.length) return null;
  const t = chartTime(tickIso);
  const last = bars[bars.length - 1];
  const price = +ltp;
  if (t < last.time + intervalSeconds) {
    last.high = Math.max(last.high, price);
    last.low = Math.min(last.low, price);
    last.close = price;
    return last;
  }
  const start = t - ((t - last.time) % intervalSeconds);
  const bar = { time: start, open: price, high: price, low: price, close: price, volume: 0 };
  bars.push(bar);
  return bar;
}

// ---------------------------------------------------------------- options payoff
/**
 * P&L at expiry of one leg at underlying price ``spot``.
 * leg: {kind: "CE"|"PE"|"FUT", side: "BUY"|"SELL", strike, premium (entry price), quantity (units)}
 */
export function legPayoff(leg, spot) {
  const dir = leg.side === "SELL" ? -1 : 1;
  const k = +leg.strike, p = +leg.premium, q = +leg.quantity;
  let value;
  if (leg.kind === "CE") value = Math.max(spot - k, 0);
  else if (leg.kind === "PE") value = Math.max(k - spot, 0);
  else value = spot; // futures / underlying: premium is the entry price
  return dir * (value - p) * q;
}

export function payoffAt(legs, spot) {
  return legs.reduce((acc, leg) => acc + legPayoff(leg, spot), 0);
}

/** Curve over [lo, hi] in ``steps``, with breakevens (linear interpolation) and max profit/loss. */
export function payoffCurve(legs, lo, hi, steps = 200) {
  const points = [];
  for (let i = 0; i <= steps; i++) {
    const s = lo + ((hi - lo) * i) / steps;
    points.push({ spot: s, pnl: payoffAt(legs, s) });
  }
  // kinks sit at the strikes: evaluate there too so maxima and breakevens are exact
  for (const leg of legs) {
    const k = +leg.strike;
    if (leg.kind !== "FUT" && k > lo && k < hi) points.push({ spot: k, pnl: payoffAt(legs, k) });
  }
  points.sort((a, b) => a.spot - b.spot);
  const breakevens = [];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1], b = points[i];
    if (a.pnl === 0 && (i === 1 || points[i - 2].pnl !== 0)) breakevens.push(a.spot);
    else if ((a.pnl < 0 && b.pnl > 0) || (a.pnl > 0 && b.pnl < 0)) {
      breakevens.push(a.spot + ((0 - a.pnl) * (b.spot - a.spot)) / (b.pnl - a.pnl));
    }
  }
  const pnls = points.map((p) => p.pnl);
  // Beyond the range the curve keeps its end slopes: a rising/falling end means unlimited.
  const slope = (i, j) => (points[j].pnl - points[i].pnl) / (points[j].spot - points[i].spot);
  const n = points.length;
  const upSlope = slope(n - 2, n - 1), downSlope = slope(0, 1);
  return {
    points,
    breakevens: breakevens.map((b) => Math.round(b * 100) / 100),
    maxProfit: upSlope > 1e-9 || downSlope < -1e-9 ? Infinity : Math.max(...pnls),
    maxLoss: upSlope < -1e-9 || downSlope > 1e-9 ? -Infinity : Math.min(...pnls),
  };
}

// ---------------------------------------------------------------- order ticket
/** One idempotency key per ticket: a double click or a retry replays, never duplicates. */
export function newTicketKey(random = () => globalThis.crypto.randomUUID()) {
  return `tkt-${random()}`;
}

/**
 * The ticket's form values -> the order body. ``amo`` and ``slice`` are sent only when ticked, so
 * the ticket works against servers that do not know those fields (they refuse unknown fields).
 */
export function orderBody(form) {
  const body = {
    symbol: String(form.symbol || "").trim().toUpperCase(),
    side: form.side,
    type: form.type,
    quantity: Number.parseInt(form.quantity, 10),
    product: form.product || "D",
    validity: form.validity || "DAY",
  };
  if (form.account_id) body.account_id = Number(form.account_id);
  if (form.type === "LIMIT" || form.type === "SL") body.price = String(form.price || "").trim();
  if (form.type === "SL" || form.type === "SL-M") body.trigger_price = String(form.trigger_price || "").trim();
  if (form.amo) body.amo = true;
  if (form.slice) body.slice = true;
  return body;
}

/** Client-side checks before calling the API (the server re-checks everything). */
export function ticketErrors(body) {
  const errors = {};
  if (!body.symbol) errors.symbol = "Enter a symbol.";
  if (!Number.isInteger(body.quantity) || body.quantity < 1) errors.quantity = "Quantity must be a whole number ≥ 1.";
  for (const f of ["price", "trigger_price"]) {
    if (f in body && !(dec(body[f]) > 0n)) errors[f] = "Enter a positive price.";
  }
  return errors;
}

// ---------------------------------------------------------------- series
/** Drawdown series (fraction ≤ 0) from an equity series; nulls stay null. */
export function drawdown(equity) {
  let peak = -Infinity;
  return equity.map((v) => {
    if (v === null || v === undefined) return null;
    peak = Math.max(peak, v);
    return peak > 0 ? v / peak - 1 : 0;
  });
}

/** Rows -> CSV text (RFC 4180 quoting), for the trades export. */
export function toCSV(rows, columns) {
  const q = (v) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns.map(q).join(","), ...rows.map((r) => columns.map((c) => q(r[c])).join(","))].join("\r\n") + "\r\n";
}

/** Daily P&L map {"YYYY-MM-DD": scaled BigInt} -> calendar weeks (Mon..Sun) of one month. */
export function calendarMonth(year, month, byDay) {
  const first = new Date(Date.UTC(year, month - 1, 1));
  const days = new Date(Date.UTC(year, month, 0)).getUTCDate();
  const lead = (first.getUTCDay() + 6) % 7; // Monday first
  const cells = Array(lead).fill(null);
  for (let d = 1; d <= days; d++) {
    const key = `${year}-${String(month).padStart(2, "0")}-${String(d).padStart(2, "0")}`;
    cells.push({ day: d, key, pnl: byDay[key] ?? null });
  }
  while (cells.length % 7) cells.push(null);
  const weeks = [];
  for (let i = 0; i < cells.length; i += 7) weeks.push(cells.slice(i, i + 7));
  return weeks;
}

// ---------------------------------------------------------------- alert rule bodies
/** Kinds whose only parameter is a price level (the form shows one "level" box for them). */
export const LEVEL_KINDS = ["price_above", "price_below", "cross_up", "cross_down"];

/**
 * The alerts API body from the form's fields. Level kinds take ``level`` (a positive decimal,
 * sent as a string, as the API keeps Decimals); other kinds take ``paramsJson`` (a JSON object).
 * Returns {body} or {error} naming the field; ``partial`` builds a PATCH body (no kind).
 */
export function alertBody({ name, symbol, kind, level, paramsJson, recurring, cooldown }, { partial = false } = {}) {
  const sym = String(symbol || "").trim().toUpperCase();
  if (!sym) return { error: "symbol: enter a symbol" };
  let params;
  if (LEVEL_KINDS.includes(kind)) {
    const v = dec(String(level || "").trim().replace(/,/g, ""));
    if (v === null || v <= 0n) return { error: "level: enter a price above 0" };
    params = { level: decString(v, SCALE).replace(/\.?0+$/, "") };
  } else {
    try { params = JSON.parse(paramsJson || "{}"); } catch { return { error: "params: not valid JSON" }; }
    if (!params || typeof params !== "object" || Array.isArray(params)) return { error: "params: must be a JSON object" };
  }
  const cd = String(cooldown ?? "").trim() === "" ? 0 : Number(cooldown);
  if (!Number.isInteger(cd) || cd < 0) return { error: "cooldown_seconds: a whole number of seconds, 0 or more" };
  const body = { name: String(name || "").trim() || null, symbol: sym, params, recurring: !!recurring, cooldown_seconds: cd };
  if (!partial) body.kind = kind;
  return { body };
}

// ---------------------------------------------------------------- analytics
/** `/analytics/pnl?group_by=day` items -> {"YYYY-MM-DD": scaled BigInt net P&L} (for calendarMonth). */
export function pnlDayMap(items) {
  const out = {};
  for (const it of items) out[it.key] = (out[it.key] ?? 0n) + (dec(it.net_pnl) ?? 0n);
  return out;
}

/** The months (as [year, month]) from the first to the last day key, oldest first; [] if none. */
export function monthsOf(dayKeys) {
  const keys = [...dayKeys].filter((k) => /^\d{4}-\d{2}-\d{2}$/.test(k)).sort();
  if (!keys.length) return [];
  let [y, m] = keys[0].split("-").map(Number);
  const [y2, m2] = keys.at(-1).split("-").map(Number);
  const out = [];
  while (y < y2 || (y === y2 && m <= m2)) {
    out.push([y, m]);
    if (++m > 12) { m = 1; y += 1; }
  }
  return out;
}

/** A month's total and its winning / losing day counts from calendarMonth's weeks. */
export function monthSummary(weeks) {
  let total = 0n, up = 0, down = 0;
  for (const c of weeks.flat()) {
    if (!c || c.pnl === null) continue;
    total += c.pnl;
    if (c.pnl > 0n) up++; else if (c.pnl < 0n) down++;
  }
  return { total, up, down };
}

// ---------------------------------------------------------------- options builder
/** The analyze endpoint's legs -> legPayoff's legs (strikes may arrive as "3.145E+4"; stock = FUT-like). */
export function analysisLegs(legs) {
  return legs.map((l) => ({
    kind: l.instrument === "EQ" ? "FUT" : l.instrument,
    side: l.side,
    strike: l.strike === null || l.strike === undefined ? 0 : Number(l.strike),
    premium: Number(l.premium),
    quantity: Number(l.quantity),
  }));
}

/** Linear map of a payoff chart into an SVG box: {x(price), y(pnl), lo, hi, min, max}. */
export function payoffScale(prices, series, width, height, pad = 4) {
  const lo = Math.min(...prices), hi = Math.max(...prices);
  const all = series.flat().filter((v) => Number.isFinite(v));
  let min = Math.min(0, ...all), max = Math.max(0, ...all);
  if (max === min) { max += 1; min -= 1; }
  const x = (p) => pad + ((p - lo) / (hi - lo || 1)) * (width - 2 * pad);
  const y = (v) => pad + ((max - v) / (max - min)) * (height - 2 * pad);
  return { x, y, lo, hi, min, max };
}

// ---------------------------------------------------------------- deployments
/**
 * A strategy's own P&L from its fills (average cost, per symbol; exact decimals):
 * fills = [{symbol, side, quantity, price, charges}] oldest first, ltps = Map symbol -> ltp string.
 * Returns {rows: [{symbol, quantity, average, realised, unrealised}], realised, unrealised, charges, net}
 * as scaled BigInts (unrealised null while a symbol has no quote).
 */
export function strategyPnl(fills, ltps = new Map()) {
  const pos = new Map();
  let charges = 0n;
  for (const f of fills) {
    const p = pos.get(f.symbol) || { symbol: f.symbol, quantity: 0n, average: 0n, realised: 0n };
    const q = BigInt(f.quantity) * (f.side === "SELL" ? -1n : 1n);
    const price = dec(f.price);
    charges += dec(f.charges) ?? 0n;
    if (p.quantity === 0n || (p.quantity > 0n) === (q > 0n)) {
      const n = p.quantity + q;
      p.average = (p.average * abs(p.quantity) + price * abs(q)) / abs(n);
      p.quantity = n;
    } else {
      const closing = abs(q) < abs(p.quantity) ? abs(q) : abs(p.quantity);
      p.realised += (price - p.average) * closing * (p.quantity > 0n ? 1n : -1n);
      const n = p.quantity + q;
      if (n === 0n) p.average = 0n;
      else if ((n > 0n) !== (p.quantity > 0n)) p.average = price; // flipped: the rest opens here
      p.quantity = n;
    }
    pos.set(f.symbol, p);
  }
  let realised = 0n, unrealised = 0n;
  const rows = [...pos.values()].map((p) => {
    const ltp = dec(ltps.get(p.symbol));
    const u = p.quantity === 0n ? 0n : ltp === null ? null : (ltp - p.average) * p.quantity;
    realised += p.realised;
    if (u !== null) unrealised += u;
    return { ...p, unrealised: u };
  });
  return { rows, realised, unrealised, charges, net: realised + unrealised - charges };
}
const abs = (n) => (n < 0n ? -n : n);

// ---------------------------------------------------------------- sweep heat map
/** Min / max of a heat-map matrix, ignoring nulls (failed or non-finite combinations). */
export function matrixRange(matrix) {
  const vals = matrix.flat().filter((v) => v !== null && v !== undefined && Number.isFinite(v));
  return vals.length ? { min: Math.min(...vals), max: Math.max(...vals) } : { min: null, max: null };
}

/** Cell colour: red (worst) -> amber -> green (best) as "rgb(r, g, b)"; null values are grey. */
export function heatColor(v, min, max) {
  if (v === null || v === undefined || !Number.isFinite(v) || min === null) return "rgb(60, 66, 72)";
  const t = max > min ? (v - min) / (max - min) : 0.5;
  const lerp = (a, b, u) => Math.round(a + (b - a) * u);
  const [lo, mid, hi] = [[182, 35, 36], [210, 153, 34], [46, 160, 67]];
  const [a, b, u] = t < 0.5 ? [lo, mid, t * 2] : [mid, hi, (t - 0.5) * 2];
  return `rgb(${lerp(a[0], b[0], u)}, ${lerp(a[1], b[1], u)}, ${lerp(a[2], b[2], u)})`;
}
