// Shared client state and a tiny event hub between screens.
export const state = {
  user: null,
  accounts: [],
  accountId: null,
  risk: null,
  watchlists: [],
  watchlistId: null,
  quotes: new Map(), // symbol -> latest quote body (decimal strings)
  positions: [],
  notifications: [],
  extraSymbols: new Set(), // symbols other screens need live (positions, chart)
};

const subs = {};
export function on(event, fn) { (subs[event] ||= []).push(fn); }
export function emit(event, arg) { for (const fn of subs[event] || []) { try { fn(arg); } catch (e) { console.error(e); } } }

export function account() { return state.accounts.find((a) => a.id === state.accountId) || null; }
export function canTrade() { return state.user && state.user.role !== "viewer"; }
