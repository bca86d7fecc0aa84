// Tags on tickets (issue 11): small coloured chips on the list's rows and in the
// conversation's header, and the picker that applies and removes them. The picker is a
// dialog of checkboxes, one per tag, narrowed by typing: Tab or the arrow keys move
// through them, Space (or Enter in the search box, for the first match) applies or
// removes one at once (POST/DELETE /tickets/{id}/tags/{tag_id}), Esc closes it. Other
// agents see the change live (the server's ticket.updated). Tag names are an admin's
// words: put in the page as text only, like everything else.

import { api } from "./api.js";
import { showTicket } from "./conversation.js";
import { $, el } from "./dom.js";
import { patchTicket, renderList } from "./list.js";
import { state } from "./state.js";

const COLOURS = new Set(["grey", "red", "orange", "yellow", "green", "teal", "blue", "purple", "pink"]);

let allTags = []; // GET /tags, when the picker was last opened
let busy = false;
let lastFocus = null; // the tag whose checkbox had the focus (it is drawn again)

function chip(tag) {
  const colour = COLOURS.has(tag.colour) ? tag.colour : "grey";
  return el("span", {
    class: `tag-chip tag-${colour}${tag.active ? "" : " tag-inactive"}`,
    text: tag.name,
    title: tag.description || tag.name,
    "data-tag": tag.name,
  });
}

export function tagChips(tags) {
  // The list's row: nothing when the ticket has no tags.
  if (!tags || !tags.length) return null;
  return el("span", { class: "ticket-tags", "aria-label": "Tags" }, ...tags.map(chip));
}

export function renderTicketTags(ticket) {
  const node = $("conv-tags");
  const tags = ticket.tags || [];
  $("conv-tags-list").replaceChildren(...tags.map(chip));
  $("conv-tags-list").hidden = !tags.length;
  $("tags-btn").textContent = tags.length ? "Edit tags" : "Add a tag";
  node.hidden = false;
  if ($("tags-dialog").open) renderChoices();
}

// --- the picker ---------------------------------------------------------------------

function choices() {
  // The tags an agent may set: the active ones, and inactive ones still on the ticket
  // (to take off: they cannot be put back).
  const on = new Set((state.ticket.tags || []).map((t) => t.id));
  return allTags.filter((tag) => tag.active || on.has(tag.id)).map((tag) => ({ tag, on: on.has(tag.id) }));
}

function visibleBoxes() {
  return [...$("tags-choices").querySelectorAll("input[type=checkbox]")].filter((box) => !box.closest(".choice").hidden);
}

function renderChoices() {
  const wanted = $("tags-filter").value.trim().toLowerCase();
  const active = document.activeElement;
  const refocus = active === document.body || $("tags-choices").contains(active);
  const rows = choices().map(({ tag, on }) => {
    const box = el("input", { type: "checkbox", checked: on, disabled: busy, "data-tag-id": String(tag.id) });
    box.addEventListener("change", () => toggle(tag, box.checked));
    const label = el(
      "label",
      { class: "choice tag-choice" },
      box,
      chip(tag),
      el("span", { class: "tag-description", text: tag.active ? tag.description : "No longer in use: can be removed, not added again" }),
    );
    label.hidden = Boolean(wanted) && !tag.name.toLowerCase().includes(wanted);
    return label;
  });
  const legend = el("legend", { class: "visually-hidden", text: "Tags on this ticket" });
  $("tags-choices").replaceChildren(legend, ...rows);
  $("tags-empty").hidden = rows.some((row) => !row.hidden);
  $("tags-empty").textContent = allTags.length ? "No tag matches." : "No tags yet: an admin creates them in Django admin.";
  if (refocus && lastFocus) $("tags-choices").querySelector(`[data-tag-id="${lastFocus}"]`)?.focus();
}

function showPickerError(text) {
  $("tags-error").textContent = text;
  $("tags-error").hidden = !text;
}

async function toggle(tag, on) {
  const ticket = state.ticket;
  if (!ticket || busy) return;
  busy = true;
  showPickerError("");
  renderChoices();
  try {
    const updated = await api(on ? "POST" : "DELETE", `/tickets/${ticket.id}/tags/${tag.id}`);
    // The open ticket and its row at once (the answer is the list's shape: the
    // ticket's history comes with the live update that follows); other agents get it live.
    if (state.ticket && state.ticket.id === updated.id) showTicket({ ...state.ticket, ...updated });
    patchTicket(updated.id, updated);
    renderList();
    $("tags-status").textContent = on ? `Tag ${tag.name} added.` : `Tag ${tag.name} removed.`;
  } catch (error) {
    if (error.status !== 401) showPickerError(error.message);
  } finally {
    busy = false;
    if (state.ticket) renderChoices();
  }
}

async function openPicker() {
  showPickerError("");
  $("tags-status").textContent = "";
  $("tags-filter").value = "";
  lastFocus = null;
  try {
    allTags = await api("GET", "/tags");
  } catch (error) {
    showPickerError(error.message);
  }
  renderChoices();
  $("tags-dialog").showModal();
  $("tags-filter").focus();
}

function onKeys(event) {
  // Arrows move between the search box and the tags; Enter in the box toggles the first
  // tag that matches (and does not close the dialog).
  const boxes = visibleBoxes();
  const index = boxes.indexOf(document.activeElement);
  if (event.target === $("tags-filter") && event.key === "Enter") {
    event.preventDefault();
    if (boxes[0] && !boxes[0].disabled) boxes[0].click();
  } else if (event.key === "ArrowDown" && boxes.length) {
    event.preventDefault();
    boxes[Math.min(index + 1, boxes.length - 1)].focus();
  } else if (event.key === "ArrowUp" && index >= 0) {
    event.preventDefault();
    (index === 0 ? $("tags-filter") : boxes[index - 1]).focus();
  }
}

export function wireTags() {
  $("tags-btn").addEventListener("click", openPicker);
  $("tags-filter").addEventListener("input", renderChoices);
  $("tags-choices").addEventListener("focusin", (event) => {
    lastFocus = event.target.dataset.tagId || null;
  });
  $("tags-form").addEventListener("keydown", onKeys);
  $("tags-dialog").addEventListener("close", () => $("tags-btn").focus({ preventScroll: true }));
}
