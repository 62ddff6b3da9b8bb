// Socket.IO on /live: quotes in batch mode (one `quotes` list per feed cycle) and the user's
// private events (order_update, fill, position_update, alert, job.progress).
import { io } from "../vendor/socket.io.esm.min.js";
import { token } from "./api.js";

const wanted = new Set();
const handlers = {};
let socket = null;

export function on(event, fn) { (handlers[event] ||= []).push(fn); if (socket) socket.on(event, fn); }
function fire(event, arg) { for (const fn of handlers[event] || []) fn(arg); }

export function connect() {
  if (socket) return socket;
  // auth as a function: every reconnect sends the current (refreshed) access token
  socket = io("/live", { auth: (cb) => cb({ token: token() }), transports: ["websocket"] });
  for (const [event, fns] of Object.entries(handlers)) for (const fn of fns) socket.on(event, fn);
  socket.on("ready", () => { fire("state", "live"); resubscribe(); });
  socket.on("disconnect", () => fire("state", "reconnecting"));
  socket.on("connect_error", (err) => fire("state", `refused: ${(err && err.message) || "error"}`));
  return socket;
}

export function disconnect() { if (socket) { socket.disconnect(); socket = null; } }
export function reconnect() { if (socket) { socket.disconnect(); socket.connect(); } }

function resubscribe() {
  socket.emit("subscribe", { symbols: [...wanted], mode: "batch" }, (ack) => fire("subscribed", ack));
}

/** Make the subscription exactly ``symbols`` (diffed against the current one). */
export function watch(symbols) {
  const next = new Set(symbols);
  const added = [...next].filter((s) => !wanted.has(s));
  const removed = [...wanted].filter((s) => !next.has(s));
  wanted.clear();
  for (const s of next) wanted.add(s);
  if (!socket || !socket.connected) return;
  if (removed.length) socket.emit("unsubscribe", { symbols: removed });
  if (added.length) socket.emit("subscribe", { symbols: added, mode: "batch" }, (ack) => fire("subscribed", ack));
}
