// Saved replies: the picker that `/` opens in the composer, and the dialog where an
// agent manages their own and their teams' replies.
//
// The picker: typing `/` at the start of the reply box or after a space opens a list
// above it, filtered as the agent types (`/ref` → "Refund policy"). ArrowUp/ArrowDown
// move, Enter (or Tab, or a click) inserts the reply in place of the `/query`, filled
// for the ticket by the server; Esc closes it and leaves the text. A placeholder the
// server could not fill (`{first_name}` of a contact without one) is selected for the
// agent to type over, and the reply box refuses to send while one is left.
//
// The textarea keeps the focus; the list is a listbox whose active option the
// textarea names (aria-activedescendant). Texts are put in with textContent only.

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { state } from "./state.js";

const PLACEHOLDER = /\{(first_name|agent_name|page_name)\}/;
const TRIGGER = /(^|\s)\/([\w-]*)$/; // a `/query` that ends where the caret is
const SCOPE_TEXT = { personal: "Only you", team: "Team", everyone: "Everyone" };

// `shown`: the query the list shows (null while it loads); `enter`: Enter was pressed
// while it loaded.
const picker = { open: false, items: [], active: 0, start: 0, query: "", shown: null, enter: false };
let cache = { ticketId: null, replies: null, loading: null };

function scopeText(reply) {
  return reply.team ? `Team ${reply.team.name}` : SCOPE_TEXT[reply.scope];
}

function text() {
  return $("composer-text");
}

export function wireReplies() {
  // Wired before main.js's own keydown handler: a key the picker uses goes no further.
  text().addEventListener("keydown", onKeydown);
  text().addEventListener("input", update);
  text().addEventListener("click", update);
  // Fetched when the agent comes to the box, so that the list is there when they type /.
  text().addEventListener("focus", () => state.ticketId && !text().disabled && replies().catch(() => {}));
  text().addEventListener("blur", () => setTimeout(() => document.activeElement !== text() && close(), 150));
  $("reply-picker").addEventListener("mousedown", (event) => event.preventDefault()); // keep the focus
  $("replies-btn").addEventListener("click", openRepliesDialog);
  $("reply-form").addEventListener("submit", onSave);
  $("reply-new").addEventListener("click", () => editReply(null));
}

export function forgetReplies() {
  cache = { ticketId: null, replies: null, loading: null };
  close();
}

async function replies() {
  // Every reply the agent may use, filled for the open ticket; fetched once per ticket
  // (and again after the agent changed one), then filtered here as they type.
  const id = state.ticketId;
  if (cache.ticketId === id && cache.replies) return cache.replies;
  if (cache.ticketId !== id || !cache.loading) {
    const loading = api("GET", `/saved-replies?ticket_id=${id}`);
    cache = { ticketId: id, replies: null, loading };
    loading.then(
      (rows) => cache.loading === loading && (cache.replies = rows),
      () => cache.loading === loading && (cache.loading = null), // asked again next time
    );
  }
  return cache.loading;
}

function rank(reply, query) {
  // As the server orders `q`: the shortcut that starts so, then shortcut or title, then text.
  const q = query.toLowerCase();
  if (!q) return 0;
  if (reply.shortcut.startsWith(q)) return 0;
  if (reply.shortcut.includes(q) || reply.title.toLowerCase().includes(q)) return 1;
  if (reply.body.toLowerCase().includes(q)) return 2;
  return -1;
}

export function openPicker() {
  // `/` pressed outside the reply box (shortcuts.js): write the `/` where the agent
  // would, and show the list.
  const box = text();
  if (box.disabled) return;
  box.focus();
  const value = box.value;
  const prefix = value && !/\s$/.test(value) ? " /" : "/";
  box.value = value + prefix;
  box.setSelectionRange(box.value.length, box.value.length);
  update();
}

async function update() {
  const box = text();
  const caret = box.selectionStart;
  const match = box.selectionEnd === caret ? box.value.slice(0, caret).match(TRIGGER) : null;
  if (!match || box.disabled || !state.ticketId) {
    close();
    return;
  }
  picker.start = caret - match[2].length - 1; // where the `/` is
  picker.query = match[2];
  const query = picker.query;
  // Open from now on: an Enter typed before the list came inserts, never sends "/hi".
  picker.open = true;
  let rows;
  try {
    rows = await replies();
  } catch (error) {
    picker.enter = false;
    showList([], `Saved replies could not be loaded: ${error.message}`);
    return;
  }
  if (query !== picker.query || !picker.open) return; // the agent typed on meanwhile
  const items = rows
    .map((reply) => ({ reply, rank: rank(reply, query) }))
    .filter((item) => item.rank >= 0)
    .sort((a, b) => a.rank - b.rank || a.reply.shortcut.localeCompare(b.reply.shortcut))
    .map((item) => item.reply);
  // A new query starts at the top; the same one (a click in the box) keeps the choice.
  const kept = picker.open && query === picker.shown ? items.findIndex((r) => r.id === picker.items[picker.active]?.id) : -1;
  picker.active = kept >= 0 ? kept : 0;
  picker.shown = query;
  showList(items, items.length ? "" : rows.length ? `No saved reply matches “${query}”.` : "No saved replies yet.");
  if (picker.enter) {
    picker.enter = false;
    if (items.length) insert(picker.active);
  }
}

function showList(items, empty) {
  picker.items = items;
  picker.open = true;
  const list = $("reply-picker");
  const options = items.map((reply, index) =>
    el(
      "li",
      {
        id: `reply-option-${reply.id}`,
        class: "reply-option",
        role: "option",
        "aria-selected": index === picker.active ? "true" : "false",
        "data-shortcut": reply.shortcut,
        onclick: () => insert(index),
      },
      el(
        "span",
        { class: "reply-option-top" },
        el("span", { class: "reply-option-title", text: reply.title }),
        el("span", { class: "reply-option-shortcut", text: `/${reply.shortcut}` }),
        el("span", { class: "reply-option-scope", text: scopeText(reply) }),
      ),
      el("span", { class: "reply-option-text", text: (reply.rendered || reply).text || reply.body }),
    ),
  );
  if (!items.length) options.push(el("li", { class: "reply-option-empty", role: "presentation", text: empty }));
  options.push(
    el(
      "li",
      { class: "reply-option-manage", role: "presentation" },
      el("button", { type: "button", class: "link-button", tabindex: "-1", text: "Manage saved replies…", onclick: openRepliesDialog }),
    ),
  );
  list.replaceChildren(...options);
  list.hidden = false;
  markActive();
}

function markActive() {
  const box = text();
  const reply = picker.items[picker.active];
  for (const [index, node] of [...$("reply-picker").querySelectorAll(".reply-option")].entries()) {
    node.setAttribute("aria-selected", index === picker.active ? "true" : "false");
  }
  if (reply) {
    box.setAttribute("aria-activedescendant", `reply-option-${reply.id}`);
    $(`reply-option-${reply.id}`)?.scrollIntoView({ block: "nearest" });
  } else {
    box.removeAttribute("aria-activedescendant");
  }
}

export function pickerOpen() {
  return picker.open;
}

function close() {
  if (!picker.open) return;
  picker.open = false;
  picker.items = [];
  picker.shown = null;
  picker.enter = false;
  $("reply-picker").hidden = true;
  $("reply-picker").replaceChildren();
  text().removeAttribute("aria-activedescendant");
}

function onKeydown(event) {
  if (!picker.open || event.isComposing) return;
  const count = picker.items.length;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    if (!count) return;
    event.preventDefault();
    picker.active = (picker.active + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
    markActive();
  } else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey && (count || picker.shown === null)) {
    event.preventDefault();
    event.stopImmediatePropagation(); // not sent: inserted
    if (picker.shown === null) picker.enter = true; // the list is on its way
    else insert(picker.active);
  } else if (event.key === "Escape") {
    event.preventDefault();
    event.stopImmediatePropagation();
    close();
  }
}

function insert(index) {
  const reply = picker.items[index];
  if (!reply) return;
  const box = text();
  const filled = reply.rendered ? reply.rendered.text : reply.body;
  const before = box.value.slice(0, picker.start);
  const after = box.value.slice(box.selectionEnd);
  box.value = before + filled + after;
  close();
  box.focus();
  // A placeholder left unfilled is selected: the agent types the word over it.
  const left = PLACEHOLDER.exec(filled);
  if (left) {
    const at = before.length + left.index;
    box.setSelectionRange(at, at + left[0].length);
    hint(`Replace ${left[0]} before sending: this ticket has no value for it.`);
  } else {
    const end = before.length + filled.length;
    box.setSelectionRange(end, end);
    hint("");
  }
  box.dispatchEvent(new Event("input")); // the typing indicator, the draft
}

export function hint(message) {
  $("composer-hint").textContent = message;
  $("composer-hint").hidden = !message;
}

export function unfilledGuard(value) {
  // Before a reply leaves: a placeholder still in it is selected and said, not sent.
  const left = PLACEHOLDER.exec(value);
  if (!left) return false;
  const box = text();
  box.focus();
  box.setSelectionRange(left.index, left.index + left[0].length);
  hint(`Replace ${left[0]} before sending: the customer would read it as it is.`);
  return true;
}

// --- the manager dialog ------------------------------------------------------------------

const manager = { rows: [], teams: [], editing: null, confirming: null };

export async function openRepliesDialog() {
  close();
  const dialog = $("replies-dialog");
  manager.confirming = null;
  editReply(null);
  if (!dialog.open) dialog.showModal();
  // Focused now, not once the list is in: the agent may be typing in another field by then.
  $("reply-title").focus();
  await loadManager();
}

// Loads of the manager's list, counted: only the newest one's answer is shown (opening the
// dialog and a quick save load it twice; the older answer may come last).
let managerLoads = 0;

async function loadManager() {
  const load = ++managerLoads;
  let rows, teams;
  try {
    [rows, teams] = await Promise.all([api("GET", "/saved-replies"), api("GET", "/saved-replies/teams")]);
  } catch (error) {
    if (load === managerLoads) formError(`Saved replies could not be loaded: ${error.message}`);
    return;
  }
  if (load !== managerLoads) return; // a newer load answers
  manager.rows = rows;
  manager.teams = teams;
  const scope = $("reply-scope");
  scope.replaceChildren(
    el("option", { value: "", text: "Only me" }),
    ...manager.teams.map((team) => el("option", { value: String(team.id), text: `Team ${team.name}` })),
  );
  renderManager();
}

function renderManager() {
  const list = $("replies-list");
  list.replaceChildren(
    ...manager.rows.map((reply) =>
      el(
        "li",
        { class: "replies-row", "data-reply-id": String(reply.id) },
        el(
          "span",
          { class: "replies-row-main" },
          el("span", { class: "reply-option-title", text: reply.title }),
          el("span", { class: "reply-option-shortcut", text: `/${reply.shortcut}` }),
          el("span", { class: "reply-option-scope", text: scopeText(reply) }),
        ),
        reply.can_edit
          ? el(
              "span",
              { class: "replies-row-actions" },
              el("button", { type: "button", class: "link-button", text: "Edit", "aria-label": `Edit ${reply.title}`, onclick: () => editReply(reply) }),
              el("button", {
                type: "button",
                class: "link-button danger",
                text: manager.confirming === reply.id ? "Delete for good?" : "Delete",
                "aria-label": manager.confirming === reply.id ? `Delete ${reply.title} for good?` : `Delete ${reply.title}`,
                onclick: () => deleteReply(reply),
              }),
            )
          : el("span", { class: "muted replies-row-actions", text: "set by an admin" }),
      ),
    ),
  );
  $("replies-empty").hidden = manager.rows.length > 0;
}

function editReply(reply) {
  manager.editing = reply;
  formError("");
  $("reply-edit-title").textContent = reply ? `Edit /${reply.shortcut}` : "New saved reply";
  $("reply-title").value = reply ? reply.title : "";
  $("reply-shortcut").value = reply ? reply.shortcut : "";
  $("reply-body").value = reply ? reply.body : "";
  $("reply-scope").value = reply && reply.team ? String(reply.team.id) : "";
  $("reply-scope").disabled = Boolean(reply); // a reply keeps its scope
  $("reply-new").hidden = !reply;
  $("reply-save").textContent = reply ? "Save changes" : "Save reply";
  if (reply) $("reply-title").focus();
}

function formError(message) {
  $("reply-error").textContent = message;
  $("reply-error").hidden = !message;
}

async function onSave(event) {
  event.preventDefault(); // the dialog stays open: the agent may add another
  const save = $("reply-save");
  if (save.disabled) return;
  const fields = {
    title: $("reply-title").value,
    shortcut: $("reply-shortcut").value,
    body: $("reply-body").value,
  };
  const editing = manager.editing;
  if (!editing && $("reply-scope").value) fields.team_id = Number($("reply-scope").value);
  save.disabled = true;
  formError("");
  try {
    if (editing) await api("PUT", `/saved-replies/${editing.id}`, fields);
    else await api("POST", "/saved-replies", fields);
  } catch (error) {
    formError(`Not saved: ${error.message}`);
    save.disabled = false;
    return;
  }
  save.disabled = false;
  forgetReplies();
  editReply(null);
  $("reply-title").focus(); // for the next one, before the list is loaded again
  await loadManager();
}

async function deleteReply(reply) {
  if (manager.confirming !== reply.id) {
    manager.confirming = reply.id;
    renderManager();
    document.querySelector(`[data-reply-id="${reply.id}"] .danger`)?.focus();
    return;
  }
  manager.confirming = null;
  try {
    await api("DELETE", `/saved-replies/${reply.id}`);
  } catch (error) {
    formError(`Not deleted: ${error.message}`);
  }
  if (manager.editing && manager.editing.id === reply.id) editReply(null);
  forgetReplies();
  await loadManager();
}
