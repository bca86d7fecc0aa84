// One ticket: choosing it (and, on a phone, going back to the list), fetching it (its
// newest messages first, older pages when scrolled to the top), its header (contact,
// status, thread control), the messaging windows or, once closed, how it ended, and the
// actions on it with their error and result lines.

import { api, apiPage } from "./api.js";
import { controlBadge, fillBadge, statusBadge } from "./badges.js";
import { ticketChanged } from "./attachments.js";
import { renderComposer } from "./composer.js";
import { customerTicketShown } from "./context.js";
import { renderCsat } from "./csat.js";
import { $, fillAvatar } from "./dom.js";
import { listQuery } from "./filters.js";
import { DAY_MS, duration, serverNow, when, windowCloses } from "./format.js";
import { loadList } from "./list.js";
import { loadNotes, markMentionsRead } from "./notes.js";
import { forgetReplies } from "./replies.js";
import { app, ME, state } from "./state.js";
import { renderTicketTags } from "./tags.js";
import { renderTimeline } from "./timeline.js";

const NEAR_TOP_PX = 150;
// Below this width the list and the conversation are two screens (phone.css).
const PHONE = window.matchMedia("(max-width: 759.98px)");

export async function selectTicket(id, { push = true } = {}) {
  const from = state.ticketId;
  state.notFound = false;
  if (id !== state.ticketId) {
    if (state.ticketId) state.drafts.set(state.ticketId, $("composer-text").value);
    if (!from) state.listScroll = $("ticket-list").scrollTop;
    state.ticketId = id;
    state.ticket = null;
    state.messages = [];
    state.olderMore = null;
    state.local = [];
    state.openContext = new Set();
    state.seenFor = null;
    state.notes = [];
    forgetReplies(); // filled for the ticket: fetched again for the next
    $("composer-text").value = state.drafts.get(id) || "";
    ticketChanged(); // its own files waiting to be sent, if any
    hideError();
    hideNotice();
  }
  if (push) {
    // `fromList`: the entry before this one is the list, where Back can simply return.
    const url = id ? `/tickets/${id}/?${listQuery()}` : `/?${listQuery()}`;
    history.pushState({ id, fromList: Boolean(id) && !from }, "", url);
  }
  for (const row of document.querySelectorAll(".ticket-row")) {
    row.classList.toggle("selected", Number(row.dataset.ticketId) === id);
  }
  renderView();
  if (!id && from) {
    // Back on the list: where it was, on the row just left.
    $("ticket-list").scrollTop = state.listScroll || 0;
    document.querySelector(`.ticket-row[data-ticket-id="${from}"] .ticket-link`)?.focus({ preventScroll: true });
  }
  await loadTicket({ scroll: true, focus: Boolean(id) });
}

export function backToList() {
  // The way the agent came, when it was from the list (the browser's Back does the
  // same); otherwise (a link to the ticket) the list is a new entry.
  if (history.state && history.state.fromList) history.back();
  else selectTicket(null);
}

export function renderView() {
  // Which screen a phone shows; wider screens show both (phone.css).
  app.dataset.view = state.ticketId || state.notFound ? "conversation" : "list";
}

export function loadTicket(options = {}) {
  // Live events wait while it loads (live.js): what they name may be newer than the
  // page the server reads.
  const load = loadTicketNow(options);
  state.loading = load;
  const done = () => {
    if (state.loading === load) state.loading = null;
  };
  load.then(done, done);
  return load;
}

async function loadTicketNow({ scroll = false, focus = false } = {}) {
  // The ticket and the newest page of its conversation. Older pages the agent already
  // scrolled back to are kept (they are history), unless what is context changed.
  const id = state.ticketId;
  if (!id) {
    $("conversation").hidden = true;
    $("conversation-placeholder").hidden = false;
    if (!state.notFound) $("placeholder-text").textContent = "Choose a ticket to see the conversation.";
    renderView();
    return;
  }
  let ticket, page, notes;
  try {
    [ticket, page, notes] = await Promise.all([api("GET", `/tickets/${id}`), apiPage(`/tickets/${id}/messages`), loadNotes(id)]);
  } catch (error) {
    if (error.status === 404 && id === state.ticketId) {
      state.ticketId = null;
      state.notFound = true;
      $("conversation").hidden = true;
      $("conversation-placeholder").hidden = false;
      $("placeholder-text").textContent = "This ticket does not exist or is not yours to see.";
      renderView();
    }
    return;
  }
  if (id !== state.ticketId) return; // the agent moved on meanwhile
  const same = state.ticket && state.ticket.id === id && state.ticket.handover_timestamp === ticket.handover_timestamp;
  const first = page.items[0];
  const older = same && page.next && first ? state.messages.filter((m) => precedes(m, first)) : [];
  state.messages = [...older, ...page.items];
  if (!older.length) state.olderMore = page.next;
  state.notes = notes;
  state.ticket = ticket;
  markMentionsRead(id);
  renderTicket({ scroll });
  if (focus) focusTicket();
}

function markSeen(ticket) {
  // Messenger's mark_seen, once per opening of a conversation the helpdesk owns (also
  // when control comes while it is open). Best effort: the server may decline.
  if (ticket.control_state !== "agent" || state.seenFor === ticket.id) return;
  state.seenFor = ticket.id;
  api("POST", `/tickets/${ticket.id}/seen`).catch(() => {});
}

export function focusTicket() {
  // Where the agent acts next on a ticket just opened: Claim while it waits, else the
  // reply box, else the way to ask for control; else its name. Not the reply box on a
  // phone: its keyboard would cover the conversation the agent came to read.
  const usable = (node) => node.offsetParent !== null && !node.disabled;
  const order = PHONE.matches
    ? [$("claim-btn"), $("take-over-closed-btn"), $("ask-again-btn")]
    : [$("claim-btn"), $("composer-text"), $("take-over-btn"), $("request-control-btn"), $("take-over-closed-btn"), $("ask-again-btn")];
  (order.find(usable) || $("conv-name")).focus({ preventScroll: true });
}

export async function loadOlder() {
  const { ticketId: id, olderMore: before } = state;
  if (!before || state.olderLoading) return;
  state.olderLoading = true;
  renderTimeline({ keep: true });
  let page;
  try {
    page = await apiPage(`/tickets/${id}/messages?${new URLSearchParams({ before })}`);
  } catch {
    state.olderLoading = false;
    if (id === state.ticketId && state.ticket) renderTimeline({ keep: true }); // the button asks again
    return;
  }
  state.olderLoading = false;
  if (id !== state.ticketId || !state.ticket) return; // the agent moved on
  if (before === state.olderMore) {
    // (Otherwise the conversation was fetched again meanwhile.)
    const shown = new Set(state.messages.map((m) => m.id));
    state.messages = [...page.items.filter((m) => !shown.has(m.id)), ...state.messages];
    state.olderMore = page.next;
  }
  renderTimeline({ keep: true });
  fillTimeline();
}

export function onTimelineScroll() {
  if ($("timeline").scrollTop < NEAR_TOP_PX) loadOlder();
}

function fillTimeline() {
  // Still at the top after a page came in (it went into a folded context group), or a
  // page that does not fill the view and so cannot be scrolled: fetch the one before.
  const list = $("timeline");
  if (state.olderMore && (list.scrollTop < NEAR_TOP_PX || list.scrollHeight <= list.clientHeight)) loadOlder();
}

// Messages in the conversation's order: (timestamp, id).
export function precedes(a, b) {
  // Timeline order (the API's): by time, then by id.
  return a.timestamp < b.timestamp || (a.timestamp === b.timestamp && a.id < b.id);
}

export function putMessage(message) {
  // A message a live event named, as the server shows it now: replaces the loaded copy,
  // or goes where it belongs; older than the oldest loaded, it is on a page not loaded
  // yet and will come with it.
  const index = state.messages.findIndex((m) => m.id === message.id);
  if (index >= 0) {
    state.messages[index] = message;
    return;
  }
  if (state.olderMore && state.messages.length && precedes(message, state.messages[0])) return;
  const at = state.messages.findIndex((m) => precedes(message, m));
  state.messages.splice(at < 0 ? state.messages.length : at, 0, message);
}

export function showTicket(ticket) {
  // The open ticket as GET /tickets/{id} answered now (a live event named it).
  if (ticket.id !== state.ticketId) return;
  state.ticket = ticket;
  renderTicket();
}

function renderTicket({ scroll = false } = {}) {
  const ticket = state.ticket;
  const closed = ticket.status === "closed";
  $("conversation-placeholder").hidden = true;
  $("conversation").hidden = false;
  $("conversation").dataset.ticketId = String(ticket.id);
  fillAvatar($("conv-avatar"), ticket.contact);
  $("conv-name").textContent = ticket.contact.name;
  $("conv-page").textContent = ticket.page_name;
  fillBadge($("conv-status"), statusBadge(ticket), "status");
  fillBadge($("conv-control"), controlBadge(ticket), "control");
  renderTicketTags(ticket);
  renderOwner(ticket);
  // The page's trouble and the conversation's wait, above it all while they last.
  showLine($("conv-paused"), ticket.outbox_paused_reason);
  showLine($("conv-waiting"), ticket.waiting_reason);
  $("claim-btn").hidden = ticket.status !== "waiting";
  $("transfer-btn").hidden = !ticket.can_transfer;
  $("close-btn").hidden = closed;
  // Closed: how it ended instead of the reply box and the windows' countdown.
  $("composer").hidden = closed;
  $("conv-windows").hidden = closed;
  $("closed-panel").hidden = !closed;
  if (closed) renderClosed(ticket);
  else renderWindows(ticket);
  renderComposer(ticket);
  customerTicketShown(ticket); // the customer panel follows the ticket shown
  renderTimeline({ scroll });
  fillTimeline();
  markSeen(ticket);
}

function showLine(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

// Who owns the thread, since when and why; and how the page gets it, smaller.
function renderOwner(ticket) {
  const node = $("conv-owner");
  let text = ticket.owner_text || "";
  if (text && ticket.owner_since) text += ` since ${when(ticket.owner_since)}`;
  if (text && ticket.owner_note) text += ` (${ticket.owner_note})`;
  node.textContent = text;
  node.hidden = !text;
  node.dataset.role = ticket.owner_role || "";
  showLine($("conv-mode"), ticket.handover_mode_text);
}

// What became of the conversation after the ticket closed, by its control state now.
const AFTER_CLOSE = {
  returning: "The conversation is being handed back to the bot…",
  bot: "The conversation is back with the bot.",
  requested: "The bot was asked for the conversation again; waiting for it to pass it.",
  agent: "The helpdesk has the conversation again, in a newer ticket.",
  taken: "Another app has the conversation.",
  idle: "Nobody has the conversation now: the customer talks to no one.",
};

function renderClosed(ticket) {
  const closing = [...ticket.events].reverse().find((e) => e.kind === "closed");
  const parts = [];
  if (closing && closing.actor) parts.push(`Closed by ${closing.actor.id === ME.id ? "you" : closing.actor.name}`);
  else parts.push("Closed");
  const outcome = (closing && closing.detail) || ticket.closing_note;
  if (outcome) parts.push(outcome);
  const at = Date.parse(closing ? closing.created_at : ticket.closed_at);
  if (at) parts.push(when(at));
  $("closed-summary").textContent = parts.join(" · ");
  $("closed-control").textContent = AFTER_CLOSE[ticket.control_state] || `Thread: ${ticket.control_state_label}.`;
  $("take-over-closed-btn").hidden = !ticket.can_take_over;
  $("ask-again-btn").hidden = !ticket.can_request_control;
  renderCsat(ticket); // the rating asked at the close (csat.js)
}

export function renderWindows(ticket) {
  const now = serverNow();
  const node = $("conv-windows");
  if (ticket.status === "closed") return;
  if (!ticket.last_user_message_at) {
    node.textContent = "Messaging windows: the customer has not written yet.";
    return;
  }
  const standard = windowCloses(ticket.window_closes_at, now, DAY_MS);
  const parts = [
    standard > now ? `24-hour window: ${duration(standard - now)} left` : "24-hour window: closed",
  ];
  if (!ticket.human_agent_enabled) {
    parts.push("7-day Human Agent window: not enabled for this page");
  } else {
    const human = windowCloses(ticket.human_agent_window_closes_at, now, 7 * DAY_MS);
    parts.push(human > now ? `7-day Human Agent window: ${duration(human - now)} left` : "7-day Human Agent window: closed");
  }
  node.textContent = parts.join(" · ");
  node.classList.toggle("closing", standard - now < 60 * 60000);
}

function showError(text) {
  const node = $("conv-error");
  node.textContent = text;
  node.hidden = false;
}

function hideError() {
  $("conv-error").hidden = true;
}

export function showNotice(text) {
  // What an action did, in words (it stays until the next action or ticket).
  const node = $("conv-notice");
  node.textContent = text;
  node.hidden = false;
}

function hideNotice() {
  $("conv-notice").hidden = true;
}

export async function action(fn) {
  // Runs an API call; its failure is shown in words. Returns whether it succeeded.
  hideError();
  hideNotice();
  let ok = true;
  try {
    await fn();
  } catch (error) {
    ok = false;
    if (error.status !== 401) showError(error.message);
  }
  await Promise.all([loadTicket(), loadList()]).catch(() => {});
  return ok;
}
