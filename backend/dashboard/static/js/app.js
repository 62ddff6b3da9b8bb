// The dashboard's entry module: sign-in, the header (account, kill switch), tabs, the watchlist
// with live quotes and the order ticket. Screens live in ./screens/*.js.
import * as api from "./api.js";
import * as live from "./live.js";
import { formatINR, formatPrice, newTicketKey, orderBody, ticketErrors } from "./calc.js";
import { h, $, $$, clear } from "./dom.js";
import { state, emit, on, account, canTrade } from "./state.js";
import { toast, notify, errorText, renderNotifications } from "./ui.js";
import * as orders from "./screens/orders.js";
import * as positions from "./screens/positions.js";
import * as accounts from "./screens/accounts.js";

// Measurements read by the browser test (docs/benchmarks.md): first rendered quote, long frames.
const perf = (window.__dashPerf = { firstQuoteMs: null, quotesRendered: 0, longFrames: [], frames: 0 });
try {
  const type = PerformanceObserver.supportedEntryTypes.includes("long-animation-frame") ? "long-animation-frame" : "longtask";
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) perf.longFrames.push({ type, start: Math.round(e.startTime), ms: Math.round(e.duration) });
  }).observe({ type, buffered: true });
  perf.longFrameType = type;
} catch { perf.longFrameType = "unsupported"; }

const SCREENS = {
  orders, positions, accounts,
  notifications: { render: renderNotifications },
};
const lazy = {
  chart: () => import("./screens/chart.js"),
  backtests: () => import("./screens/backtests.js"),
  alerts: () => import("./screens/alerts.js"),
  analytics: () => import("./screens/analytics.js"),
  options: () => import("./screens/options.js"),
  deployments: () => import("./screens/deployments.js"),
};

// ---------------------------------------------------------------- sign-in
let signInWaiters = [];
function showSignIn(note) {
  $("#signin").hidden = false;
  $("#signin-note").textContent = note || "Use your platform account (trader, or viewer for read-only).";
  $("#signin-email").focus();
  return new Promise((resolve) => signInWaiters.push(resolve));
}
api.setSignInHandler(() => showSignIn("Your session expired: sign in again to carry on where you were."));

$("#signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("#signin-error").textContent = "";
  $("#signin-submit").disabled = true;
  try {
    await api.signIn($("#signin-email").value, $("#signin-password").value);
    $("#signin-password").value = "";
    $("#signin").hidden = true;
    const waiting = signInWaiters; signInWaiters = [];
    if (state.user) waiting.forEach((r) => r()); else await boot();
  } catch (err) {
    $("#signin-error").textContent = errorText(err);
  } finally {
    $("#signin-submit").disabled = false;
  }
});

$("#signout").addEventListener("click", async () => {
  live.disconnect();
  try { await api.signOut(); } catch { /* the cookies are cleared or already dead */ }
  location.reload();
});

// ---------------------------------------------------------------- boot
async function start() {
  try {
    await api.refresh(); // a quiet sign-in from the HttpOnly cookie, if there is one
  } catch {
    await showSignIn();
    return; // the form's submit boots
  }
  await boot();
}

async function boot() {
  state.user = await api.get("/auth/me");
  $("#whoami").textContent = `${state.user.email} (${state.user.role})`;
  document.body.classList.toggle("viewer", !canTrade());
  await Promise.all([accounts.loadAccounts(), loadWatchlists()]);
  live.connect();
  route();
  refreshRisk();
  setInterval(refreshRisk, 15000);
  setInterval(() => { if (state.accountId) emit("summary"); }, 10000);
}

// ---------------------------------------------------------------- header: account + kill switch
on("account", () => {
  const sel = $("#account-select");
  clear(sel);
  for (const a of state.accounts) {
    sel.append(h("option", { value: String(a.id), selected: a.id === state.accountId }, `${a.mode === "live" ? "LIVE · " : "Paper · "}${a.name}`));
  }
  const acc = account();
  const isLive = acc && acc.mode === "live";
  const badge = $("#account-mode");
  badge.textContent = isLive ? "LIVE MONEY" : "PAPER";
  badge.className = `badge ${isLive ? "live" : "paper"}`;
  document.body.classList.toggle("live-account", Boolean(isLive));
  refreshRisk();
  emit("summary");
});
$("#account-select").addEventListener("change", (ev) => {
  state.accountId = Number(ev.target.value);
  emit("account");
  route();
});

on("summary", async () => {
  if (!state.accountId) return;
  try {
    const s = await api.get(`/portfolio${api.qs({ account_id: state.accountId })}`);
    $("#funds").textContent = `Available ${formatINR(s.available_cash)} · Equity ${formatINR(s.equity)}`;
    emit("summary-data", s);
  } catch { /* shown on the next refresh */ }
});

async function refreshRisk() {
  if (!state.accountId) return;
  try {
    state.risk = await api.get(`/portfolio/accounts/${state.accountId}/risk`);
  } catch { return; }
  renderKill();
}

function renderKill() {
  const r = state.risk;
  if (!r) return;
  const on_ = r.breaker && r.breaker.kill_switch;
  const st = $("#kill-state");
  st.textContent = r.global_kill ? "HALTED (global)" : r.trading_state;
  st.className = `badge state-${String(r.trading_state).toLowerCase()}`;
  $("#kill-toggle").textContent = on_ ? "Release kill switch" : "Kill switch";
  $("#kill-toggle").dataset.on = on_ ? "1" : "0";
  $("#kill-toggle").disabled = !canTrade();
}

let killTimer = null;
$("#kill-toggle").addEventListener("click", () => {
  const on_ = $("#kill-toggle").dataset.on === "1";
  const c = $("#kill-confirm");
  c.textContent = on_ ? "Confirm: resume trading" : "Confirm: halt new orders (exits stay possible)";
  c.hidden = false;
  clearTimeout(killTimer);
  killTimer = setTimeout(() => { c.hidden = true; }, 5000);
});
$("#kill-confirm").addEventListener("click", async () => {
  $("#kill-confirm").hidden = true;
  const on_ = $("#kill-toggle").dataset.on === "1";
  try {
    state.risk = await api.send("POST", `/portfolio/accounts/${state.accountId}/kill-switch`, {
      on: !on_, reason: on_ ? "" : "dashboard kill switch",
    });
    renderKill();
    toast(on_ ? "Kill switch released: trading resumed." : "Kill switch ON: new orders are refused; exits stay possible.", on_ ? "info" : "warn");
  } catch (err) { toast(errorText(err), "error"); }
});

// ---------------------------------------------------------------- tabs
function route() {
  const tab = (location.hash || "#watch").slice(1);
  for (const a of $$("#tabs a")) a.classList.toggle("active", a.dataset.tab === tab);
  document.body.dataset.tab = tab;
  for (const s of $$("#content > .screen")) s.hidden = s.id !== tab;
  const root = document.getElementById(tab);
  if (!root || tab === "watch" || !state.user) return;
  const mod = SCREENS[tab];
  if (mod) { mod.render(root); return; }
  if (lazy[tab]) lazy[tab]().then((m) => m.render(root)).catch((e) => { clear(root).append(h("p.error", {}, String(e))); });
}
window.addEventListener("hashchange", route);
on("notifications", () => { if (location.hash === "#notifications") route(); });
$("#bell").addEventListener("click", () => { location.hash = "#notifications"; });
export function showChart(symbol) { state.chartSymbol = symbol; location.hash = "#chart"; route(); }

// ---------------------------------------------------------------- watchlists
async function loadWatchlists() {
  state.watchlists = await api.get("/watchlists");
  if (!state.watchlists.length) {
    state.watchlists = [await api.send("POST", "/watchlists", { name: "My watchlist", symbols: [] })];
  }
  if (!state.watchlists.some((w) => w.id === state.watchlistId)) state.watchlistId = state.watchlists[0].id;
  renderWatchlist();
}
const currentList = () => state.watchlists.find((w) => w.id === state.watchlistId);
function replaceList(wl) { state.watchlists = state.watchlists.map((w) => (w.id === wl.id ? wl : w)); renderWatchlist(); }

const rows = new Map(); // symbol -> {ltp, bid, ask, tr}
function renderWatchlist() {
  const sel = $("#wl-select");
  clear(sel);
  for (const w of state.watchlists) sel.append(h("option", { value: String(w.id), selected: w.id === state.watchlistId }, w.name));
  const body = clear($("#wl-body"));
  rows.clear();
  const wl = currentList();
  for (const sym of wl ? wl.symbols : []) {
    const q = state.quotes.get(sym);
    const ltp = h("td.num.ltp", {}, q ? formatPrice(q.ltp) : "—");
    const bid = h("td.num.bidask", {}, q ? `${formatPrice(q.bid)} / ${formatPrice(q.ask)}` : "");
    const tr = h("tr", { dataset: { symbol: sym } },
      h("td", {}, h("a.sym", { href: "#chart", onclick: (e) => { e.preventDefault(); showChart(sym); } }, sym)),
      ltp, bid,
      h("td.actions", {},
        h("button.buy", { type: "button", title: `Buy ${sym}`, onclick: () => openTicket(sym, "BUY") }, "B"),
        h("button.sell", { type: "button", title: `Sell ${sym}`, onclick: () => openTicket(sym, "SELL") }, "S"),
        h("button.secondary.remove", { type: "button", title: `Remove ${sym}`, onclick: () => removeSymbol(sym) }, "✕")));
    rows.set(sym, { ltp, bid, tr });
    body.append(tr);
  }
  if (wl && !wl.symbols.length) body.append(h("tr", {}, h("td.muted", { colSpan: 4 }, "Search above to add symbols.")));
  updateSubscription();
}
export function updateSubscription() {
  const wl = currentList();
  live.watch([...(wl ? wl.symbols : []), ...state.extraSymbols]);
}
on("extra-symbols", updateSubscription);

$("#wl-select").addEventListener("change", (e) => { state.watchlistId = Number(e.target.value); renderWatchlist(); });
$("#wl-new").addEventListener("click", async () => {
  const name = prompt("Name of the new watchlist");
  if (!name) return;
  try {
    const wl = await api.send("POST", "/watchlists", { name: name.trim(), symbols: [] });
    state.watchlists.push(wl); state.watchlistId = wl.id; renderWatchlist();
  } catch (err) { toast(errorText(err), "error"); }
});
$("#wl-rename").addEventListener("click", async () => {
  const wl = currentList();
  const name = wl && prompt("New name", wl.name);
  if (!name) return;
  try { replaceList(await api.send("PATCH", `/watchlists/${wl.id}`, { name: name.trim() })); } catch (err) { toast(errorText(err), "error"); }
});
$("#wl-delete").addEventListener("click", async () => {
  const wl = currentList();
  if (!wl || !confirm(`Delete the watchlist "${wl.name}"?`)) return;
  try { await api.del(`/watchlists/${wl.id}`); state.watchlistId = null; await loadWatchlists(); } catch (err) { toast(errorText(err), "error"); }
});

async function addSymbol(sym) {
  const wl = currentList();
  clear($("#wl-results")); $("#wl-search").value = "";
  try { replaceList(await api.send("POST", `/watchlists/${wl.id}/symbols`, { symbol: sym })); } catch (err) { toast(errorText(err), "error"); }
}
async function removeSymbol(sym) {
  const wl = currentList();
  try { replaceList(await api.del(`/watchlists/${wl.id}/symbols/${encodeURIComponent(sym)}`)); } catch (err) { toast(errorText(err), "error"); }
}

let searchSeq = 0, searchTimer = null;
$("#wl-search").addEventListener("input", (e) => {
  clearTimeout(searchTimer);
  const q = e.target.value.trim();
  searchTimer = setTimeout(async () => {
    const seq = ++searchSeq;
    const list = clear($("#wl-results"));
    if (!q) return;
    const page = await api.get(`/market-data/instruments${api.qs({ q, limit: 10 })}`).catch(() => ({ items: [] }));
    if (seq !== searchSeq) return; // a newer keystroke won
    for (const ins of page.items) {
      list.append(h("li", { role: "option", dataset: { symbol: ins.trading_symbol }, onclick: () => addSymbol(ins.trading_symbol) },
        h("strong", {}, ins.trading_symbol), " ", h("span.muted", {}, `${ins.name} · ${ins.instrument_type}`)));
    }
    if (!page.items.length) list.append(h("li.muted", {}, "No instrument matches."));
  }, 150);
});
$("#wl-search").addEventListener("keydown", (e) => {
  if (e.key === "Enter") { e.preventDefault(); const first = $("#wl-results li[data-symbol]"); if (first) addSymbol(first.dataset.symbol); }
});

// ---------------------------------------------------------------- live quotes (batch mode)
const pending = new Map();
let frameQueued = false;
live.on("quotes", (list) => {
  for (const q of list) { state.quotes.set(q.symbol, q); pending.set(q.symbol, q); }
  if (!frameQueued) { frameQueued = true; requestAnimationFrame(paintQuotes); }
});
live.on("quote", (q) => { state.quotes.set(q.symbol, q); pending.set(q.symbol, q); if (!frameQueued) { frameQueued = true; requestAnimationFrame(paintQuotes); } });
function paintQuotes() {
  frameQueued = false;
  perf.frames += 1;
  for (const [sym, q] of pending) {
    const row = rows.get(sym);
    if (row) {
      const prev = row.ltp.textContent;
      row.ltp.textContent = formatPrice(q.ltp);
      row.bid.textContent = `${formatPrice(q.bid)} / ${formatPrice(q.ask)}`;
      if (prev !== "—" && prev !== row.ltp.textContent) {
        row.ltp.classList.remove("up", "down");
        row.ltp.classList.add(prev.replace(/,/g, "") < q.ltp ? "up" : "down");
      }
      perf.quotesRendered += 1;
      if (perf.firstQuoteMs === null) perf.firstQuoteMs = performance.now();
    }
  }
  emit("quotes", pending);
  pending.clear();
}
live.on("state", (s) => { $("#live-state").textContent = `quotes: ${s}`; });
live.on("error", (e) => toast(`${e.code}: ${e.message}`, "error"));

// private events
live.on("order_update", (o) => {
  if (o.status === "rejected") notify("Order rejected", `${o.side || ""} ${o.symbol || ""} ${o.status_message || ""}`.trim(), "error");
  emit("orders-changed", o);
});
live.on("fill", (f) => {
  notify("Filled", `${f.side || ""} ${f.quantity || ""} ${f.symbol || ""} @ ${formatPrice(f.price)}`, "success");
  emit("orders-changed", f);
  emit("positions-changed", f);
  emit("summary");
});
live.on("position_update", (p) => emit("positions-changed", p));
live.on("alert", (a) => { notify("Alert", `${a.symbol || ""} ${a.message || a.name || ""}`, "warn"); emit("alert", a); });
live.on("job.progress", (j) => emit("job", j));

// ---------------------------------------------------------------- order ticket
const dlg = $("#ticket");
let ticketKey = null, previewOk = false;

export function openTicket(symbol, side = "BUY", preset = {}) {
  if (!canTrade()) { toast("Viewers cannot place orders.", "warn"); return; }
  ticketKey = newTicketKey(); // one key per ticket: double clicks and retries replay, never duplicate
  $("#t-symbol").value = symbol || $("#t-symbol").value || "";
  (side === "SELL" ? $("#t-sell") : $("#t-buy")).checked = true;
  if (preset.quantity) $("#t-qty").value = preset.quantity;
  if (preset.type) $("#t-type").value = preset.type;
  if (preset.price) $("#t-price").value = preset.price;
  $("#t-amo").checked = false; $("#t-slice").checked = false;
  $("#t-error").textContent = "";
  invalidatePreview();
  syncTicketFields();
  if (!dlg.open) dlg.showModal();
  $("#t-qty").focus();
}
on("open-ticket", (t) => openTicket(t.symbol, t.side, t));
on("show-chart", (sym) => showChart(sym));

function syncTicketFields() {
  const t = $("#t-type").value;
  $("#t-price-row").hidden = !(t === "LIMIT" || t === "SL");
  $("#t-trigger-row").hidden = !(t === "SL" || t === "SL-M");
  const side = $("#t-sell").checked ? "SELL" : "BUY";
  $("#ticket-title").textContent = `${side} ${$("#t-symbol").value.toUpperCase()}`;
  $("#ticket-form").dataset.side = side;
}
function invalidatePreview() { previewOk = false; $("#t-submit").disabled = true; clear($("#t-preview")); }
for (const el of $$("#ticket-form input, #ticket-form select")) {
  el.addEventListener("input", () => { invalidatePreview(); syncTicketFields(); });
}

function ticketBody() {
  return orderBody({
    symbol: $("#t-symbol").value, side: $("#t-sell").checked ? "SELL" : "BUY", type: $("#t-type").value,
    quantity: $("#t-qty").value, price: $("#t-price").value, trigger_price: $("#t-trigger").value,
    product: $("#t-product").value, validity: $("#t-validity").value, account_id: state.accountId,
    amo: $("#t-amo").checked, slice: $("#t-slice").checked,
  });
}

$("#t-preview-btn").addEventListener("click", async () => {
  const body = ticketBody();
  const errs = ticketErrors(body);
  $("#t-error").textContent = Object.values(errs).join(" ");
  if (Object.keys(errs).length) return;
  const box = clear($("#t-preview"));
  box.append(h("p.muted", {}, "Checking…"));
  try {
    const p = await api.send("POST", "/orders/preview", body);
    clear(box);
    box.append(
      h(`p.decision.${p.allowed ? "ok" : "refused"}`, { id: "t-decision" },
        p.allowed ? `Risk: allowed (${p.trading_state})` : `Risk: refused (${p.trading_state})`),
      p.checks.length ? h("ul.checks", {}, p.checks.map((c) => h("li", {}, `${c.name}: ${c.reason}`))) : null,
      h("table.kv", {}, h("tbody", {},
        h("tr", {}, h("th", {}, "LTP"), h("td.num", {}, formatINR(p.ltp))),
        Object.entries(p.charges || {}).map(([k, v]) => h("tr", { class: k === "total" ? "total" : "" }, h("th", {}, k.replace(/_/g, " ")), h("td.num", {}, formatINR(v)))),
        h("tr", {}, h("th", {}, "Cash required"), h("td.num", {}, formatINR(p.cash_required))),
        h("tr", {}, h("th", {}, "Available"), h("td.num", {}, formatINR(p.available_cash))))),
    );
    previewOk = p.allowed;
    $("#t-submit").disabled = !p.allowed;
  } catch (err) {
    clear(box);
    $("#t-error").textContent = errorText(err);
  }
});

$("#t-submit").addEventListener("click", async () => {
  if (!previewOk) return;
  const btn = $("#t-submit");
  btn.disabled = true; // a double click sends once; the key makes even a retry idempotent
  try {
    const o = await api.send("POST", "/orders", ticketBody(), { "Idempotency-Key": ticketKey });
    toast(`Order ${o.id}: ${o.side} ${o.quantity} ${o.symbol} ${o.status}`, o.status === "rejected" ? "error" : "success");
    dlg.close();
    emit("orders-changed", o);
    emit("positions-changed", o);
    emit("summary");
  } catch (err) {
    $("#t-error").textContent = errorText(err);
    if (err.code === "RISK_REJECTED") notify("Order rejected", errorText(err), "error");
  }
});
$("#t-close").addEventListener("click", () => dlg.close());

// Keyboard: B / S open the ticket for the selected (or first) watchlist symbol.
document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || !state.user || dlg.open) return;
  const tag = (e.target && e.target.tagName) || "";
  if (["INPUT", "SELECT", "TEXTAREA"].includes(tag)) return;
  const key = e.key.toLowerCase();
  if (key !== "b" && key !== "s") return;
  e.preventDefault();
  const sym = state.chartSymbol || (currentList() && currentList().symbols[0]) || "";
  openTicket(sym, key === "b" ? "BUY" : "SELL");
});

start();
