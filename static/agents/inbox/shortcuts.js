// Keyboard first: single keys for what an agent does all day.
//
//   j / k   the next / previous ticket in the list (focus moves there; Enter opens it)
//   c       claim the open ticket          e   close it (the close dialog)
//   /       saved replies in the reply box n   write a private note
//   ?       the list of shortcuts
//
// None fires while the agent types in a field (input, textarea, select, anything
// contenteditable), with Ctrl, Meta or Alt held, or while a dialog is open: there the
// keys are the field's or the dialog's.

import { $ } from "./dom.js";
import { openCloseDialog } from "./dialogs.js";
import { setMode } from "./notes.js";
import { openPicker } from "./replies.js";
import { state } from "./state.js";

function typing(target) {
  if (!(target instanceof Element)) return false;
  if (target.closest("dialog:not([open])")) return false; // a closed dialog's field types nothing
  return Boolean(target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true']")) || target.isContentEditable;
}

function usable(id) {
  const node = $(id);
  return node && !node.hidden && node.offsetParent !== null && !node.disabled;
}

const ACTIONS = {
  j: () => move(1),
  k: () => move(-1),
  c: () => usable("claim-btn") && $("claim-btn").click(),
  e: () => usable("close-btn") && openCloseDialog(),
  "/": () => {
    if (!composerOpenForReply()) return false;
    setMode("reply");
    openPicker();
    return true;
  },
  n: () => {
    if (!state.ticket || $("composer").hidden) return false;
    setMode("note", { focus: true });
    return true;
  },
  "?": () => $("shortcuts-dialog").showModal(),
};

function composerOpenForReply() {
  // In note mode the box is open even when a reply could not be sent: `/` asks for a reply.
  return Boolean(state.ticket) && !$("composer").hidden && !state.ticket.lock_reason;
}

export function wireShortcuts() {
  document.addEventListener("keydown", onKeydown);
  // Esc leaves the reply box (once no picker took it), so that the keys work again.
  $("composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.defaultPrevented) $("composer-text").blur();
  });
}

function onKeydown(event) {
  if (event.defaultPrevented || event.isComposing) return;
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (typing(event.target)) return;
  if (document.querySelector("dialog[open]")) return;
  const action = ACTIONS[event.key];
  if (!action) return;
  if (action() === false) return;
  event.preventDefault(); // e.g. the `/` is not typed twice, the page does not scroll
}

// The row j/k last went to: a live update redraws the list, and the focus with it.
let cursor = null;

function move(step) {
  // From the focused row, else the one j/k last went to, else the open ticket's, else
  // before the first.
  const links = [...document.querySelectorAll("#ticket-list .ticket-row .ticket-link")];
  if (!links.length) return false;
  const idOf = (link) => Number(link.closest(".ticket-row").dataset.ticketId);
  const focused = links.indexOf(document.activeElement);
  const last = document.activeElement === document.body ? links.findIndex((link) => idOf(link) === cursor) : -1;
  const selected = links.findIndex((link) => idOf(link) === state.ticketId);
  const from = focused >= 0 ? focused : last >= 0 ? last : selected;
  const to = from < 0 ? (step > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, from + step));
  const link = links[to];
  if (link.offsetParent === null) return false; // a phone showing the conversation
  link.focus();
  link.scrollIntoView({ block: "nearest" });
  cursor = idOf(link);
  return true;
}
