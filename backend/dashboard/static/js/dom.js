// Building DOM without HTML strings: every user string (symbols, names, messages) goes through
// textContent / attributes, never innerHTML, so nothing a user typed can become markup.

/** h("td.num#x", {dataset: {...}, onclick}, child, "text", ...) */
export function h(spec, props = {}, ...children) {
  spec = spec.replace(/[.#](?=[.#]|$)/g, ""); // "span." when a computed class is empty
  const m = /^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
  const el = document.createElement((m && m[1]) || "div");
  for (const part of (m && m[2] ? m[2].match(/[.#][\w-]+/g) : []) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "dataset") Object.assign(el.dataset, v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** A table from rows: columns = [{label, value(row) -> Node|string, cls}] */
export function table(columns, rows, { id, empty = "Nothing here yet.", rowProps } = {}) {
  const thead = h("thead", {}, h("tr", {}, columns.map((c) => h(`th${c.cls ? "." + c.cls : ""}`, {}, c.label))));
  const tbody = h("tbody");
  if (!rows.length) tbody.append(h("tr", {}, h("td.muted", { colSpan: columns.length }, empty)));
  for (const r of rows) {
    tbody.append(h("tr", rowProps ? rowProps(r) : {}, columns.map((c) => h(`td${c.cls ? "." + c.cls : ""}`, {}, c.value(r)))));
  }
  return h(`table.grid${id ? "#" + id : ""}`, {}, thead, tbody);
}

/** Class for a signed amount: "pos" / "neg" / "" */
export function signClass(n) {
  if (n === null || n === undefined) return "";
  const v = typeof n === "bigint" ? (n > 0n ? 1 : n < 0n ? -1 : 0) : Math.sign(Number(n));
  return v > 0 ? "pos" : v < 0 ? "neg" : "";
}
