// Toasts and notifications (fills, rejections, alerts), shared by every screen.
import { h, $, clear } from "./dom.js";
import { state, emit } from "./state.js";
import { formatIST } from "./calc.js";

export function toast(text, kind = "info", ms = 5000) {
  const el = h(`div.toast.${kind}`, { role: kind === "error" ? "alert" : "status" }, text);
  $("#toasts").append(el);
  setTimeout(() => el.remove(), ms);
  return el;
}

export function notify(title, text, kind = "info") {
  state.notifications.unshift({ title, text, kind, at: Date.now(), unread: true });
  state.notifications.length = Math.min(state.notifications.length, 200);
  $("#bell-count").textContent = String(state.notifications.filter((n) => n.unread).length);
  toast(`${title}: ${text}`, kind);
  emit("notifications");
}

export function renderNotifications(root) {
  clear(root);
  root.append(h("h2", {}, "Notifications"));
  for (const n of state.notifications) n.unread = false;
  $("#bell-count").textContent = "0";
  if (!state.notifications.length) root.append(h("p.muted", {}, "Fills, rejections and alerts appear here."));
  root.append(
    h("ul.notes", {}, state.notifications.map((n) =>
      h(`li.${n.kind}`, {}, h("strong", {}, n.title), " ", n.text, h("span.muted", {}, ` · ${formatIST(n.at, { timeOnly: true })}`)))),
  );
}

/** Show an API error next to a control (message from the envelope; never HTML). */
export function errorText(err) {
  if (!err) return "";
  const fields = err.details && err.details.fields;
  const first = fields && Object.entries(fields)[0];
  const detail = first ? ` (${first[0]}: ${[].concat(first[1]).flat().join(" ")})` : "";
  const checks = err.details && err.details.checks;
  const why = checks && checks.length ? `: ${checks.map((c) => c.reason).join("; ")}` : "";
  return `${err.message}${why}${why ? "" : detail}`;
}

/** Two-step confirm on a button: the first click arms it for 4 s, the second runs ``action``. */
export function confirmButton(label, armedLabel, action, cls = "danger") {
  let armed = false, timer = null;
  const btn = h(`button.${cls}`, { type: "button" }, label);
  btn.addEventListener("click", async () => {
    if (!armed) {
      armed = true; btn.textContent = armedLabel; btn.classList.add("armed");
      timer = setTimeout(() => { armed = false; btn.textContent = label; btn.classList.remove("armed"); }, 4000);
      return;
    }
    clearTimeout(timer); armed = false; btn.textContent = label; btn.classList.remove("armed");
    btn.disabled = true;
    try { await action(); } finally { btn.disabled = false; }
  });
  return btn;
}
