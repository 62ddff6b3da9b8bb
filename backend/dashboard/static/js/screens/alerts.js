// Alerts: create, edit, pause / resume, delete, and the firing history (the toast on a firing is
// in app.js, from the `alert` Socket.IO event). Every name and symbol is text, never HTML.
import * as api from "../api.js";
import { LEVEL_KINDS, alertBody, formatIST, formatPrice } from "../calc.js";
import { h, clear, table } from "../dom.js";
import { canTrade, on } from "../state.js";
import { toast, errorText, confirmButton } from "../ui.js";

const KINDS = ["price_above", "price_below", "cross_up", "cross_down", "pct_change", "volume_spike", "indicator", "position_pnl", "strategy_signal"];
const EXAMPLES = {
  pct_change: '{"pct": "2", "window_seconds": 300, "direction": "abs"}',
  volume_spike: '{"factor": "3", "window": 20}',
  indicator: '{"indicator": "rsi", "period": 14, "op": "above", "level": "70", "timeframe_seconds": 60}',
  position_pnl: '{"op": "below", "threshold": "-5000"}',
  strategy_signal: '{"strategy": "my-strategy", "signal": "BUY"}',
};

let root = null;
let editing = null; // the rule being edited, or null for a new one
let historyRule = null; // history filter (rule id) or null for all
on("alert", () => { if (root && !root.hidden) loadHistory(); });

export function render(el) {
  root = el;
  clear(root);
  root.append(h("h2", {}, "Alerts"));
  if (canTrade()) root.append(form());
  root.append(h("div#alerts-wrap"), h("h3", {}, "History"), h("div#alerts-history"));
  loadRules();
  loadHistory();
}

function describe(r) {
  if (LEVEL_KINDS.includes(r.kind)) return `${r.kind.replace("_", " ")} ${formatPrice(r.params.level)}`;
  return `${r.kind} ${JSON.stringify(r.params)}`;
}

async function loadRules() {
  const wrap = root.querySelector("#alerts-wrap");
  let rules;
  try { rules = (await api.get("/alerts?limit=200")).items; } catch (err) { toast(errorText(err), "error"); return; }
  clear(wrap).append(table(
    [
      { label: "Name", value: (r) => r.name || "—" },
      { label: "Symbol", value: (r) => r.symbol },
      { label: "Rule", value: (r) => describe(r) },
      { label: "Status", value: (r) => h(`span.badge.alert-${r.status}`, {}, r.status) },
      { label: "Fired", cls: "num", value: (r) => String(r.fire_count) },
      { label: "Last fired", value: (r) => (r.last_fired_at ? formatIST(r.last_fired_at) : "—") },
      {
        label: "", value: (r) => h("span.actions", {},
          h("button.secondary.history", { type: "button", onclick: () => { historyRule = r.id; loadHistory(); } }, "History"),
          canTrade() && (r.status === "active" || r.status === "paused") ? [
            h("button.secondary.edit", { type: "button", onclick: () => { editing = r; render(root); } }, "Edit"),
            h(`button.secondary.${r.status === "active" ? "pause" : "resume"}`, {
              type: "button",
              onclick: async () => {
                try {
                  await api.send("POST", `/alerts/${r.id}/${r.status === "active" ? "pause" : "resume"}`);
                  loadRules();
                } catch (err) { toast(errorText(err), "error"); }
              },
            }, r.status === "active" ? "Pause" : "Resume"),
          ] : null,
          canTrade() ? confirmButton("Delete", "Confirm", async () => {
            try { await api.del(`/alerts/${r.id}`); loadRules(); } catch (err) { toast(errorText(err), "error"); }
          }) : null),
      },
    ],
    rules, { id: "alerts-table", empty: "No alerts yet.", rowProps: (r) => ({ dataset: { ruleId: String(r.id), status: r.status } }) },
  ));
}

async function loadHistory() {
  const wrap = root.querySelector("#alerts-history");
  let page;
  const q = historyRule ? `&rule_id=${historyRule}` : "";
  try { page = await api.get(`/alerts/history?limit=100${q}`); } catch (err) { toast(errorText(err), "error"); return; }
  clear(wrap);
  if (historyRule) {
    wrap.append(h("p.row", {}, `Rule #${historyRule} only `, h("button.secondary", { type: "button", onclick: () => { historyRule = null; loadHistory(); } }, "Show all")));
  }
  wrap.append(table(
    [
      { label: "Fired", value: (f) => formatIST(f.fired_at) },
      { label: "Symbol", value: (f) => f.symbol },
      { label: "Kind", value: (f) => f.kind },
      { label: "Price", cls: "num", value: (f) => (f.price === null ? "—" : formatPrice(f.price)) },
      { label: "Message", value: (f) => f.message + (f.is_test ? " (test)" : "") },
      { label: "Webhook", value: (f) => f.webhook_status || "—" },
    ],
    page.items, { id: "alerts-history-table", empty: "No firings yet." },
  ));
}

function form() {
  const r = editing;
  const name = h("input#al-name", { placeholder: "Name (optional)", maxlength: 100, value: r ? r.name || "" : "" });
  const symbol = h("input#al-symbol", { placeholder: "Symbol", maxlength: 64, value: r ? r.symbol : "", size: 10 });
  const kind = h("select#al-kind", { disabled: !!r }, KINDS.map((k) => h("option", { value: k, selected: r ? r.kind === k : false }, k)));
  const level = h("input#al-level", { placeholder: "Level (₹)", inputmode: "decimal", size: 10, value: r && r.params.level !== undefined ? r.params.level : "" });
  const params = h("input#al-params", { placeholder: "params (JSON)", size: 40, value: r && !LEVEL_KINDS.includes(r.kind) ? JSON.stringify(r.params) : "" });
  const recurring = h("input#al-recurring", { type: "checkbox", checked: r ? r.recurring : false });
  const cooldown = h("input#al-cooldown", { placeholder: "Cooldown s", inputmode: "numeric", size: 8, value: r ? String(r.cooldown_seconds) : "" });
  const err = h("p.error#al-error");
  const sync = () => {
    const isLevel = LEVEL_KINDS.includes(kind.value);
    level.hidden = !isLevel; params.hidden = isLevel;
    if (!isLevel && !params.value) params.value = EXAMPLES[kind.value] || "{}";
  };
  kind.addEventListener("change", () => { params.value = ""; sync(); });
  sync();
  return h("form#alert-form", {
    onsubmit: async (e) => {
      e.preventDefault();
      const out = alertBody({
        name: name.value, symbol: symbol.value, kind: kind.value, level: level.value,
        paramsJson: params.value, recurring: recurring.checked, cooldown: cooldown.value,
      }, { partial: !!r });
      if (out.error) { err.textContent = out.error; return; }
      try {
        const saved = r ? await api.send("PATCH", `/alerts/${r.id}`, out.body) : await api.send("POST", "/alerts", out.body);
        toast(`Alert ${saved.name ? `"${saved.name}"` : `#${saved.id}`} ${r ? "saved" : "created"}.`, "success");
        editing = null;
        render(root);
      } catch (e2) { err.textContent = errorText(e2); }
    },
  },
  h("h3", {}, r ? `Edit alert #${r.id}` : "New alert"),
  h("div.row", {}, name, symbol, kind, level, params),
  h("div.row", {}, h("label", {}, recurring, " recurring"), cooldown,
    h("button#al-save", { type: "submit" }, r ? "Save" : "Create"),
    r ? h("button.secondary", { type: "button", onclick: () => { editing = null; render(root); } }, "Cancel") : null),
  err);
}
