// Private notes and mentions.
//
// The composer writes a reply or, in note mode (its Note tab, or `n`), a note: the
// box turns the note colour and Enter posts the note, which no customer ever sees.
// Notes come from GET /tickets/{id}/notes and sit in the timeline by their time among
// the messages (timeline.js), as a yellow card; a `note.created` event brings another
// agent's note live (live.js refetches the notes).
//
// Mentions: `@username` or `@Full Name` in a note notifies that agent: their top bar's
// Mentions count grows live (a `mention.created` event on their own socket group), and
// with notifications on they get a desktop notification and the sound. Opening the
// ticket marks its mentions read. After `@`, the agents who may see the ticket are
// offered in the picker's place (Enter or Tab completes).

import { api } from "./api.js";
import { renderFiles } from "./attachments.js";
import { selectTicket } from "./conversation.js";
import { $, el } from "./dom.js";
import { clock, fullTime, when } from "./format.js";
import { notifyMention } from "./notify.js";
import { hint, pickerOpen } from "./replies.js";
import { ME, state } from "./state.js";
import { renderTimeline } from "./timeline.js";

const mentions = { unread: 0, rows: [], loaded: false };
const complete = { open: false, agents: null, loading: null, ticketId: null, items: [], active: 0, start: 0 };

// --- the composer's mode ----------------------------------------------------------------

export function wireNotes() {
  $("mode-reply").addEventListener("click", () => setMode("reply", { focus: true }));
  $("mode-note").addEventListener("click", () => setMode("note", { focus: true }));
  $("composer-modes").addEventListener("keydown", (event) => {
    // Tabs: the arrow keys move between them.
    if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
    event.preventDefault();
    setMode(state.mode === "note" ? "reply" : "note");
    $(state.mode === "note" ? "mode-note" : "mode-reply").focus();
  });
  $("mentions-btn").addEventListener("click", openMentions);
  $("composer-text").addEventListener("keydown", onCompleteKeydown);
  $("composer-text").addEventListener("input", updateComplete);
  $("composer-text").addEventListener("blur", () => setTimeout(() => document.activeElement !== $("composer-text") && closeComplete(), 150));
  $("mention-picker").addEventListener("mousedown", (event) => event.preventDefault());
}

export function setMode(mode, { focus = false } = {}) {
  state.mode = mode;
  const note = mode === "note";
  $("composer").dataset.mode = mode;
  $("mode-reply").setAttribute("aria-selected", note ? "false" : "true");
  $("mode-note").setAttribute("aria-selected", note ? "true" : "false");
  $("mode-reply").tabIndex = note ? -1 : 0;
  $("mode-note").tabIndex = note ? 0 : -1;
  $("note-label").hidden = !note;
  $("composer-label").textContent = note ? "Private note" : "Reply";
  $("composer-text").placeholder = note
    ? "A private note for agents — @name to mention someone; Enter adds it"
    : "Write a reply — Enter sends, Shift+Enter makes a new line, / saved replies";
  $("send-btn").textContent = note ? "Add note" : "Send";
  hint("");
  closeComplete();
  if (state.ticket) renderLock();
  renderFiles(); // the paper clip is a reply's, not a note's
  if (focus) $("composer-text").focus();
}

function renderLock() {
  // A note needs no thread control: the box is open in note mode whatever Messenger says.
  const reason = state.ticket.lock_reason;
  const locked = Boolean(reason) && state.mode !== "note";
  $("composer-text").disabled = locked;
  $("send-btn").disabled = locked;
}

export function noteMode() {
  return state.mode === "note";
}

export function composerLocked(ticket) {
  // For composer.js: whether the box is locked for what it writes now.
  return Boolean(ticket.lock_reason) && state.mode !== "note";
}

// --- notes -----------------------------------------------------------------------------

export async function loadNotes(ticketId) {
  return api("GET", `/tickets/${ticketId}/notes`);
}

export async function refreshNotes() {
  const id = state.ticketId;
  if (!id) return;
  const notes = await loadNotes(id);
  if (id !== state.ticketId) return;
  state.notes = notes;
  renderTimeline();
}

export async function postNote() {
  const box = $("composer-text");
  const text = box.value;
  if (!text.trim() || !state.ticket || box.disabled) return;
  const ticketId = state.ticket.id;
  $("send-btn").disabled = true;
  try {
    const note = await api("POST", `/tickets/${ticketId}/notes`, { text });
    if (state.ticketId === ticketId) {
      if (box.value === text) box.value = "";
      state.drafts.delete(ticketId);
      if (!state.notes.some((n) => n.id === note.id)) state.notes = [...state.notes, note];
      hint("");
      renderTimeline({ scroll: true });
    }
  } catch (error) {
    // Nothing is lost: the text stays for the agent to fix (a mention, say).
    if (state.ticketId === ticketId) hint(`Note not added: ${error.message}`);
  } finally {
    if (state.ticket) renderLock();
  }
}

export function noteNode(note, ticket) {
  const author = note.author ? (note.author.id === ME.id ? "You" : note.author.name) : "Someone";
  const earlier = note.ticket_id !== ticket.id ? ` · on ticket #${note.ticket_id}` : "";
  return el(
    "li",
    { class: "note", "data-note-id": String(note.id) },
    el(
      "div",
      { class: "note-meta" },
      el("span", { class: "note-label", text: `Note · only agents see this${earlier}` }),
      el("span", { class: "author", text: author }),
      el("time", { datetime: new Date(note.timestamp).toISOString(), title: fullTime(note.timestamp), text: clock(note.timestamp) }),
    ),
    el("p", { class: "note-text" }, ...noteText(note)),
  );
}

function noteText(note) {
  // The mentions stand out; everything stays text (textContent), never markup.
  const names = note.mentions.flatMap((agent) => [`@${agent.name}`, `@${agent.username}`]).sort((a, b) => b.length - a.length);
  if (!names.length) return [note.text];
  const escaped = names.map((name) => name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const pattern = new RegExp(`(${escaped.join("|")})(?![\\w])`, "gi");
  const parts = [];
  let last = 0;
  for (const match of note.text.matchAll(pattern)) {
    parts.push(note.text.slice(last, match.index), el("span", { class: "note-mention", text: match[0] }));
    last = match.index + match[0].length;
  }
  parts.push(note.text.slice(last));
  return parts;
}

// --- @ completion ----------------------------------------------------------------------

const AT = /(^|[\s(])@([\w.+-]*)$/;

async function updateComplete() {
  const box = $("composer-text");
  const caret = box.selectionStart;
  const match = state.mode === "note" && !pickerOpen() ? box.value.slice(0, caret).match(AT) : null;
  if (!match || !state.ticketId) {
    closeComplete();
    return;
  }
  complete.start = caret - match[2].length - 1;
  const query = match[2].toLowerCase();
  if (complete.ticketId !== state.ticketId || !complete.agents) {
    const ticketId = state.ticketId;
    const typed = box.value;
    complete.ticketId = ticketId;
    complete.loading = complete.loading || api("GET", `/tickets/${ticketId}/mentionable`);
    try {
      const agents = await complete.loading;
      if (complete.ticketId === ticketId) complete.agents = agents;
    } catch {
      return;
    } finally {
      complete.loading = null;
    }
    if (box.value !== typed || state.ticketId !== ticketId) return; // typed on: a later call shows it
  }
  const items = complete.agents.filter(
    (agent) => agent.username.toLowerCase().startsWith(query) || agent.name.toLowerCase().split(/\s+/).some((word) => word.startsWith(query)),
  );
  if (!items.length) {
    closeComplete();
    return;
  }
  complete.items = items;
  complete.active = Math.min(complete.active, items.length - 1);
  complete.open = true;
  const list = $("mention-picker");
  list.replaceChildren(
    ...items.map((agent, index) =>
      el(
        "li",
        {
          id: `mention-option-${agent.id}`,
          class: "reply-option",
          role: "option",
          "aria-selected": index === complete.active ? "true" : "false",
          onclick: () => completeWith(index),
        },
        el(
          "span",
          { class: "reply-option-top" },
          el("span", { class: "reply-option-title", text: agent.name }),
          el("span", { class: "reply-option-shortcut", text: `@${agent.username}` }),
        ),
      ),
    ),
  );
  list.hidden = false;
  box.setAttribute("aria-activedescendant", `mention-option-${items[complete.active].id}`);
}

function closeComplete() {
  if (!complete.open) return;
  complete.open = false;
  complete.active = 0;
  $("mention-picker").hidden = true;
  $("mention-picker").replaceChildren();
  $("composer-text").removeAttribute("aria-activedescendant");
}

function onCompleteKeydown(event) {
  if (!complete.open || event.isComposing) return;
  const count = complete.items.length;
  if (event.key === "ArrowDown" || event.key === "ArrowUp") {
    event.preventDefault();
    complete.active = (complete.active + (event.key === "ArrowDown" ? 1 : count - 1)) % count;
    for (const [index, node] of [...$("mention-picker").children].entries()) {
      node.setAttribute("aria-selected", index === complete.active ? "true" : "false");
    }
    $("composer-text").setAttribute("aria-activedescendant", `mention-option-${complete.items[complete.active].id}`);
  } else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey) {
    event.preventDefault();
    event.stopImmediatePropagation();
    completeWith(complete.active);
  } else if (event.key === "Escape") {
    event.preventDefault();
    event.stopImmediatePropagation();
    closeComplete();
  }
}

function completeWith(index) {
  const agent = complete.items[index];
  const box = $("composer-text");
  const before = `${box.value.slice(0, complete.start)}@${agent.username} `;
  box.value = before + box.value.slice(box.selectionEnd);
  box.setSelectionRange(before.length, before.length);
  closeComplete();
  box.focus();
}

// --- mentions --------------------------------------------------------------------------

export async function loadMentions() {
  let answer;
  try {
    answer = await api("GET", "/mentions");
  } catch {
    return null;
  }
  const before = new Set(mentions.rows.map((m) => m.id));
  const fresh = mentions.loaded ? answer.mentions.filter((m) => !m.read && !before.has(m.id)) : [];
  mentions.unread = answer.unread;
  mentions.rows = answer.mentions;
  mentions.loaded = true;
  renderMentions();
  return fresh;
}

export async function mentionReceived(event) {
  // Another agent's note names this one (their own socket group).
  const fresh = (await loadMentions()) || [];
  const mention = fresh.find((m) => m.note_id === event.note_id) || fresh[0];
  if (mention && !(document.hasFocus() && state.ticketId === mention.ticket_id)) {
    const who = mention.author ? mention.author.name : "Someone";
    notifyMention(`${who} mentioned you`, `${mention.contact_name}: ${mention.text}`);
  }
  // Read when the agent opens the ticket (conversation.js): a page left open on it
  // somewhere is no reading.
  if ($("mentions-dialog").open) renderMentionList();
}

export function markMentionsRead(ticketId) {
  // The agent has the ticket open: what mentions them there is read.
  if (!mentions.rows.some((m) => m.ticket_id === ticketId && !m.read)) return;
  api("POST", `/tickets/${ticketId}/mentions/read`)
    .then(() => loadMentions())
    .catch(() => {});
}

function renderMentions() {
  const count = $("mentions-count");
  count.textContent = String(mentions.unread);
  count.hidden = !mentions.unread;
  $("mentions-btn").setAttribute(
    "aria-label",
    mentions.unread ? `Mentions: ${mentions.unread} unread` : "Mentions",
  );
  $("mentions-btn").dataset.unread = String(mentions.unread);
  if ($("mentions-dialog").open) renderMentionList();
}

async function openMentions() {
  renderMentionList();
  $("mentions-dialog").showModal();
  await loadMentions();
}

function renderMentionList() {
  const list = $("mentions-list");
  list.replaceChildren(
    ...mentions.rows.map((mention) =>
      el(
        "li",
        { class: `mention-row${mention.read ? "" : " unread"}` },
        el(
          "a",
          {
            href: `/tickets/${mention.ticket_id}/`,
            class: "mention-link",
            onclick: (event) => {
              if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
              event.preventDefault();
              $("mentions-dialog").close();
              selectTicket(mention.ticket_id);
            },
          },
          el(
            "span",
            { class: "mention-top" },
            el("span", { class: "mention-who", text: `${mention.author ? mention.author.name : "Someone"} · ${mention.contact_name}` }),
            el("time", { text: when(Date.parse(mention.created_at)) }),
          ),
          el("span", { class: "mention-text", text: mention.text }),
        ),
      ),
    ),
  );
  $("mentions-empty").hidden = mentions.rows.length > 0;
}
