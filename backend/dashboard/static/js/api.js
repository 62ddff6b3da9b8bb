// REST client: the access token lives only in this module's memory. The refresh token is an
// HttpOnly SameSite=Strict cookie this code never sees; /auth/browser/refresh rotates it when sent
// with the CSRF token (readable cookie tp_csrf, bound to the refresh token by an HMAC).

let access = null;
let refreshTimer = null;
let refreshing = null;
let onSignInNeeded = async () => { throw new Error("not signed in"); };
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "HTTP_" + status;
    this.details = err.details || {};
  }
}

export function token() { return access; }
export function onToken(fn) { listeners.add(fn); }
/** ``fn()`` shows the sign-in form and resolves once the user signed in again. */
export function setSignInHandler(fn) { onSignInNeeded = fn; }

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)tp_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function setSession(body) {
  access = body.access_token;
  clearTimeout(refreshTimer);
  // refresh quietly at 80% of the access token's life
  refreshTimer = setTimeout(() => refresh().catch(() => {}), Math.max(10, body.expires_in * 0.8) * 1000);
  for (const fn of listeners) fn(access);
}

async function post(path, body, headers = {}) {
  const resp = await fetch(`/api/v1${path}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = resp.status === 204 ? null : await resp.json().catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export async function signIn(email, password) {
  setSession(await post("/auth/browser/login", { email, password }));
}

/** Single-flight refresh; resolves true when a fresh access token is in memory. */
export function refresh() {
  if (!refreshing) {
    refreshing = post("/auth/browser/refresh", undefined, { "X-CSRF-Token": csrf() })
      .then((body) => { setSession(body); return true; })
      .finally(() => { refreshing = null; });
  }
  return refreshing;
}

export async function signOut() {
  try {
    await request("POST", "/auth/browser/logout", undefined, { "X-CSRF-Token": csrf() }, false);
  } finally {
    access = null;
    clearTimeout(refreshTimer);
  }
}

const EXPIRED = new Set(["TOKEN_EXPIRED", "TOKEN_REVOKED", "TOKEN_INVALID", "UNAUTHORIZED"]);

/** Call the API; a 401 refreshes (or asks to sign in again) and retries once, keeping the screen. */
export async function request(method, path, body, headers = {}, retry = true) {
  const h = { ...headers };
  if (access) h.Authorization = `Bearer ${access}`;
  if (body !== undefined) h["Content-Type"] = "application/json";
  const resp = await fetch(`/api/v1${path}`, {
    method,
    credentials: "same-origin",
    headers: h,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 204) return null;
  const data = await resp.json().catch(() => null);
  if (resp.ok) return data;
  const err = new ApiError(resp.status, data);
  if (resp.status === 401 && retry && EXPIRED.has(err.code)) {
    try {
      await refresh();
    } catch {
      await onSignInNeeded(); // the form overlays the screen; resolves after a new sign-in
    }
    return request(method, path, body, headers, false);
  }
  throw err;
}

export const get = (path) => request("GET", path);
export const del = (path, headers) => request("DELETE", path, undefined, headers);
export const send = (method, path, body, headers) => request(method, path, body, headers);

/** ?a=1&b=2 from an object, skipping empty values. */
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, v);
  const s = p.toString();
  return s ? `?${s}` : "";
}
