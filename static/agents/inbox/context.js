// The customer panel beside the conversation (issue 11): who the customer is (name,
// picture, page, PSID to copy, first seen), their earlier tickets (one click opens one:
// the ticket's own view, read-only once closed), tags (renderTags, for the tags
// feature), and the agents' note on them, saved with who and when and seen live by the
// others (`contact.updated`).
//
// Wide screens: a right-hand column, shown or hidden with the header's Customer button
// (remembered in localStorage). Phones (below 760 px): a screen of its own, reached from
// the same button, with a Back button to the conversation.

import { api } from "./api.js";
import { selectTicket } from "./conversation.js";
import { $, el, fillAvatar } from "./dom.js";
import { when } from "./format.js";
import { app, ME, state } from "./state.js";

const STORAGE_KEY = "helpdesk.customerPanel";
const PHONE = window.matchMedia("(max-width: 759.98px)");
const REFETCH_MS = 300; // events come in bursts: one fetch each
const NOTE_LIMIT = 2000;

let shownFor = null; // the ticket whose customer is shown (or being fetched)
let context = null; // GET /tickets/{id}/context, as last answered
let savedText = ""; // the note as the server has it: what differs is unsaved
let saving = false;
let refetchTimer = null;

function storedOpen() {
  try {
    return localStorage.getItem(STORAGE_KEY) !== "closed";
  } catch {
    return true; // storage refused (privacy settings): open, not remembered
  }
}

function remember(open) {
  try {
    localStorage.setItem(STORAGE_KEY, open ? "open" : "closed");
  } catch {
    // not remembered; the panel still follows the button
  }
}

export function wireCustomerPanel() {
  app.dataset.customer = storedOpen() ? "open" : "closed";
  $("customer-btn").addEventListener("click", () => {
    if (PHONE.matches) {
      app.dataset.view = "customer";
      $("customer-title").focus({ preventScroll: true });
    } else setOpen(app.dataset.customer !== "open");
  });
  $("customer-hide").addEventListener("click", () => setOpen(false));
  $("customer-back").addEventListener("click", () => {
    app.dataset.view = "conversation";
    $("customer-btn").focus({ preventScroll: true });
  });
  $("customer-psid-copy").addEventListener("click", copyPsid);
  const note = $("customer-note");
  note.addEventListener("input", () => renderNoteStatus());
  note.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      saveNote();
    }
  });
  $("customer-note-save").addEventListener("click", saveNote);
  PHONE.addEventListener("change", () => {
    if (!PHONE.matches && app.dataset.view === "customer") app.dataset.view = "conversation";
    renderButton();
  });
  renderButton();
}

function setOpen(open) {
  app.dataset.customer = open ? "open" : "closed";
  remember(open);
  renderButton();
  if (open) load();
}

function renderButton() {
  const button = $("customer-btn");
  const open = PHONE.matches ? app.dataset.view === "customer" : app.dataset.customer === "open";
  button.setAttribute("aria-expanded", String(open));
  button.classList.toggle("active", open && !PHONE.matches);
}

// --- which customer ------------------------------------------------------------------

export function customerTicketShown(ticket) {
  // conversation.js shows a ticket (also again, on a live update): fetch its customer
  // when it is another ticket than the one shown; the tags ride on the ticket itself.
  renderTags(ticket.tags);
  if (shownFor === ticket.id) {
    if (context) {
      // The ticket as fetched now: the customer's name and picture as they are now.
      context.contact = ticket.contact;
      fillAvatar($("customer-avatar"), ticket.contact);
      $("customer-name").textContent = ticket.contact.name;
    }
    return;
  }
  shownFor = ticket.id;
  context = null;
  savedText = "";
  $("customer-note").value = "";
  $("customer-error").hidden = true;
  $("customer-body").hidden = true;
  load();
}

export function customerEvent(event) {
  // Live events (live.js): the note on the shown customer changed, or another of their
  // tickets (one opened, closed…). Their name and picture come with the ticket itself
  // (customerTicketShown): no fetch for those, nor for messages and receipts.
  if (!context || event.conversation_id !== context.conversation_id) return;
  const otherTicket = event.event === "ticket.updated" && event.ticket_id !== context.ticket_id;
  if (event.event !== "contact.updated" && !otherTicket) return;
  clearTimeout(refetchTimer);
  refetchTimer = setTimeout(() => load({ live: event.event === "contact.updated" }), REFETCH_MS);
}

async function load({ live = false } = {}) {
  const id = shownFor;
  if (!id) return;
  let answer;
  try {
    answer = await api("GET", `/tickets/${id}/context`);
  } catch (error) {
    if (id !== shownFor) return;
    if (!context) {
      $("customer-error").textContent = `The customer could not be loaded (${error.message}).`;
      $("customer-error").hidden = false;
    }
    return;
  }
  if (id !== shownFor) return; // the agent moved on meanwhile
  const before = context;
  context = answer;
  $("customer-error").hidden = true;
  $("customer-body").hidden = false;
  render(before, live);
}

// --- rendering -------------------------------------------------------------------------

function render(before, live) {
  const c = context;
  fillAvatar($("customer-avatar"), c.contact);
  $("customer-name").textContent = c.contact.name;
  $("customer-page").textContent = c.page_name;
  $("customer-psid").textContent = c.contact.psid;
  const seen = Date.parse(c.first_seen);
  $("customer-first-seen").replaceChildren(
    el("time", { datetime: c.first_seen, title: new Date(seen).toLocaleString(), text: longDate(seen) }),
  );
  renderEarlier(c);
  renderNote(before, live);
}

function renderEarlier(c) {
  const list = $("customer-earlier");
  list.replaceChildren(...c.earlier_tickets.map(earlierNode));
  $("customer-earlier-empty").hidden = c.earlier_tickets.length > 0;
  $("customer-earlier-more").hidden = !c.earlier_tickets_more;
}

function earlierNode(ticket) {
  const opened = Date.parse(ticket.opened_at);
  const closed = ticket.closed_at ? Date.parse(ticket.closed_at) : null;
  const sameDay = closed && new Date(opened).toDateString() === new Date(closed).toDateString();
  const dates = !closed ? `opened ${shortDate(opened)}` : sameDay ? shortDate(opened) : `${shortDate(opened)} – ${shortDate(closed)}`;
  const who = ticket.agent || ticket.closed_by;
  const outcome = ticket.status === "closed" ? ticket.outcome || "closed, no outcome given" : ticket.status;
  return el(
    "li",
    { "data-ticket-id": String(ticket.id) },
    el(
      "a",
      {
        class: "customer-earlier-link",
        href: `/tickets/${ticket.id}/?queue=${state.queue}`,
        onclick: (event) => {
          if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
          event.preventDefault();
          selectTicket(ticket.id);
        },
      },
      el(
        "span",
        { class: "customer-earlier-top" },
        el("span", { class: "customer-earlier-id", text: `#${ticket.id}` }),
        el("span", { class: "customer-earlier-dates", text: dates }),
      ),
      el("span", { class: "customer-earlier-outcome", text: outcome }),
      el("span", { class: "customer-earlier-agent muted", text: who ? agentLine(ticket) : "No agent had it" }),
    ),
  );
}

function agentLine(ticket) {
  const name = (agent) => (agent.id === ME.id ? "you" : agent.name);
  if (ticket.agent && ticket.closed_by && ticket.closed_by.id !== ticket.agent.id) {
    return `Agent: ${name(ticket.agent)} · closed by ${name(ticket.closed_by)}`;
  }
  return `Agent: ${name(ticket.agent || ticket.closed_by)}`;
}

function shortDate(ms) {
  const date = new Date(ms);
  const options = { day: "numeric", month: "short" };
  if (date.getFullYear() !== new Date().getFullYear()) options.year = "numeric";
  return date.toLocaleDateString([], options);
}

function longDate(ms) {
  return new Date(ms).toLocaleDateString([], { day: "numeric", month: "long", year: "numeric" });
}

// Tags: the tags feature puts `tags` on the ticket (names, or objects with a name); the
// section shows while the field exists.
export function renderTags(tags) {
  const section = $("customer-tags");
  if (!Array.isArray(tags)) {
    section.hidden = true;
    return;
  }
  section.hidden = false;
  const names = tags.map((tag) => (typeof tag === "string" ? tag : String(tag && tag.name)));
  $("customer-tag-list").replaceChildren(
    ...(names.length ? names.map((name) => el("li", { class: "customer-tag", text: name })) : [el("li", { class: "muted", text: "No tags" })]),
  );
}

// --- the note ----------------------------------------------------------------------------

function renderNote(before, live) {
  const note = context.note;
  const field = $("customer-note");
  const dirty = before !== null && field.value !== savedText;
  const changed = before !== null && (before.note.text !== note.text || before.note.updated_at !== note.updated_at);
  savedText = note.text;
  if (!dirty) field.value = note.text;
  // Someone else saved while this agent was writing: their text is kept in the field,
  // and saving it replaces the other one (said so).
  const other = live && changed && dirty && note.updated_by && note.updated_by.id !== ME.id;
  renderNoteStatus({ other });
}

function renderNoteStatus({ other = false } = {}) {
  const field = $("customer-note");
  const status = $("customer-note-status");
  const dirty = field.value !== savedText;
  $("customer-note-save").disabled = saving || !dirty;
  status.classList.remove("bad", "ok");
  if (saving) {
    status.textContent = "Saving…";
    return;
  }
  const note = context && context.note;
  if (other === true && note) {
    status.textContent = `${note.updated_by.name} changed the note meanwhile; saving yours replaces it.`;
    status.classList.add("bad");
    return;
  }
  if (field.value.length > NOTE_LIMIT - 200 && dirty) {
    status.textContent = `Not saved yet · ${field.value.length.toLocaleString()} / ${NOTE_LIMIT.toLocaleString()}`;
    return;
  }
  if (dirty) {
    status.textContent = "Not saved yet";
    return;
  }
  if (note && note.updated_at) {
    const by = note.updated_by ? (note.updated_by.id === ME.id ? "you" : note.updated_by.name) : "an agent";
    status.textContent = `Saved · by ${by}, ${when(Date.parse(note.updated_at))}`;
    status.classList.add("ok");
    return;
  }
  status.textContent = "No note yet";
}

async function saveNote() {
  const id = shownFor;
  const field = $("customer-note");
  if (!id || saving || field.value === savedText) return;
  saving = true;
  renderNoteStatus();
  let saved;
  try {
    saved = await api("PUT", `/tickets/${id}/context/note`, { text: field.value });
  } catch (error) {
    saving = false;
    if (id !== shownFor) return;
    renderNoteStatus();
    const status = $("customer-note-status");
    status.textContent = `Not saved: ${error.message}`;
    status.classList.add("bad");
    return;
  }
  saving = false;
  if (id !== shownFor || !context) return;
  context.note = saved;
  savedText = saved.text;
  field.value = saved.text; // trimmed, as stored
  renderNoteStatus();
}

// --- PSID -------------------------------------------------------------------------------

async function copyPsid() {
  const psid = $("customer-psid").textContent;
  const said = $("customer-psid-copied");
  try {
    await navigator.clipboard.writeText(psid);
    said.textContent = "Copied";
  } catch {
    // No clipboard here (an insecure origin, a refusal): select it for Ctrl+C.
    const range = document.createRange();
    range.selectNodeContents($("customer-psid"));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    said.textContent = "Selected: press Ctrl+C to copy";
  }
  setTimeout(() => {
    said.textContent = "";
  }, 3000);
}
