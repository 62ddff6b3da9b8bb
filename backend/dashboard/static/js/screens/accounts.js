// Accounts: switch, create, reset (typed confirmation); live accounts are marked everywhere.
import * as api from "../api.js";
import { formatINR, formatIST } from "../calc.js";
import { h, clear, table } from "../dom.js";
import { state, emit, canTrade } from "../state.js";
import { toast, errorText } from "../ui.js";

export async function loadAccounts() {
  state.accounts = await api.get("/portfolio/accounts");
  const saved = Number(sessionStorage.getItem("dash.account"));
  const def = state.accounts.find((a) => a.id === saved) || state.accounts.find((a) => a.is_default) || state.accounts[0];
  state.accountId = def ? def.id : null;
  emit("account");
}

export function render(root) {
  clear(root);
  root.append(h("h2", {}, "Accounts"));
  root.append(table(
    [
      { label: "Name", value: (a) => a.name },
      { label: "Mode", value: (a) => h(`span.badge.${a.mode === "live" ? "live" : "paper"}`, {}, a.mode === "live" ? "LIVE MONEY" : "PAPER") },
      { label: "Cash", cls: "num", value: (a) => formatINR(a.cash) },
      { label: "Starting cash", cls: "num", value: (a) => formatINR(a.starting_cash) },
      { label: "Created", value: (a) => formatIST(a.created_at) },
      {
        label: "", value: (a) => h("span.actions", {},
          a.id === state.accountId ? h("strong", {}, "current")
            : h("button.secondary", { type: "button", onclick: () => { switchTo(a.id); render(root); } }, "Switch"),
          a.mode === "paper" && canTrade() ? resetControl(a, root) : null),
      },
    ],
    state.accounts, { id: "accounts-table", rowProps: (a) => ({ class: a.mode === "live" ? "live-row" : "" }) },
  ));
  if (!canTrade()) return;
  const name = h("input#acc-name", { placeholder: "Account name", maxlength: 100 });
  const cash = h("input#acc-cash", { placeholder: "Starting cash (₹)", inputmode: "decimal" });
  root.append(h("h3", {}, "New paper account"), h("form.row", {
    onsubmit: async (e) => {
      e.preventDefault();
      try {
        const body = { name: name.value.trim() };
        if (cash.value.trim()) body.starting_cash = cash.value.trim().replace(/,/g, "");
        const acc = await api.send("POST", "/portfolio/accounts", body);
        state.accounts.push(acc);
        toast(`Paper account "${acc.name}" created.`, "success");
        switchTo(acc.id);
        render(root);
      } catch (err) { toast(errorText(err), "error"); }
    },
  }, name, cash, h("button", { type: "submit" }, "Create")));
}

export function switchTo(id) {
  state.accountId = id;
  sessionStorage.setItem("dash.account", String(id));
  emit("account");
}

function resetControl(a, root) {
  const input = h("input.reset-confirm", { placeholder: "type RESET", size: 8, "aria-label": `Type RESET to reset ${a.name}` });
  const btn = h("button.danger", { type: "button", disabled: true }, "Reset");
  input.addEventListener("input", () => { btn.disabled = input.value !== "RESET"; });
  btn.addEventListener("click", async () => {
    try {
      await api.send("POST", `/portfolio/accounts/${a.id}/reset`, { confirm: input.value });
      toast(`"${a.name}" reset to its starting cash.`, "success");
      await loadAccounts();
      emit("orders-changed"); emit("positions-changed");
      render(root);
    } catch (err) { toast(errorText(err), "error"); }
  });
  return h("span.reset", {}, input, btn);
}
