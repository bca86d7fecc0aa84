// One ticket: choosing it, fetching it (its newest messages first, older pages when
// scrolled to the top), its header (contact, state, assignee, transfer), the messaging
// windows, and the actions on it with their error line.

import { api, apiPage } from "./api.js";
import { renderComposer } from "./composer.js";
import { $, el, fillAvatar } from "./dom.js";
import { DAY_MS, duration, serverNow, STATE_CLASS, windowCloses } from "./format.js";
import { loadList } from "./list.js";
import { ME, state } from "./state.js";
import { renderTimeline } from "./timeline.js";

const NEAR_TOP_PX = 150;

export async function selectTicket(id, { push = true } = {}) {
  if (id !== state.ticketId) {
    if (state.ticketId) state.drafts.set(state.ticketId, $("composer-text").value);
    state.ticketId = id;
    state.ticket = null;
    state.messages = [];
    state.olderMore = null;
    state.local = [];
    state.openContext = new Set();
    $("composer-text").value = state.drafts.get(id) || "";
    hideError();
  }
  if (push) history.pushState({ id }, "", id ? `/tickets/${id}/?queue=${state.queue}` : `/?queue=${state.queue}`);
  for (const row of document.querySelectorAll(".ticket-row")) {
    row.classList.toggle("selected", Number(row.dataset.ticketId) === id);
  }
  await loadTicket({ scroll: true });
}

export async function loadTicket({ scroll = false } = {}) {
  // The ticket and the newest page of its conversation. Older pages the agent already
  // scrolled back to are kept (they are history), unless what is context changed.
  const id = state.ticketId;
  if (!id) {
    $("conversation").hidden = true;
    $("conversation-placeholder").hidden = false;
    return;
  }
  let ticket, page;
  try {
    [ticket, page] = await Promise.all([api("GET", `/tickets/${id}`), apiPage(`/tickets/${id}/messages`)]);
  } catch (error) {
    if (error.status === 404) {
      state.ticketId = null;
      $("conversation").hidden = true;
      $("conversation-placeholder").hidden = false;
      $("conversation-placeholder").textContent = "This ticket does not exist or is not yours to see.";
    }
    return;
  }
  if (id !== state.ticketId) return; // the agent moved on meanwhile
  const same = state.ticket && state.ticket.id === id && state.ticket.handover_timestamp === ticket.handover_timestamp;
  const first = page.items[0];
  const older = same && page.next && first ? state.messages.filter((m) => precedes(m, first)) : [];
  state.messages = [...older, ...page.items];
  if (!older.length) state.olderMore = page.next;
  state.ticket = ticket;
  renderTicket({ scroll });
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
function precedes(a, b) {
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
  $("conversation-placeholder").hidden = true;
  $("conversation").hidden = false;
  $("conversation").dataset.ticketId = String(ticket.id);
  fillAvatar($("conv-avatar"), ticket.contact);
  $("conv-name").textContent = ticket.contact.name;
  $("conv-page").textContent = ticket.page_name;
  const badge = $("conv-state");
  badge.textContent = ticket.control_state_label;
  badge.className = `badge badge-${STATE_CLASS[ticket.control_state] || "muted"}`;
  badge.dataset.state = ticket.control_state;
  $("conv-assignee").textContent = ticket.assignee
    ? `assigned to ${ticket.assignee.id === ME.id ? "you" : ticket.assignee.name}`
    : "unassigned";
  $("conv-status").textContent = ticket.status;
  $("claim-btn").hidden = ticket.status !== "waiting";
  $("close-btn").hidden = ticket.status === "closed";
  renderTransfer(ticket);
  renderWindows(ticket);
  renderComposer(ticket);
  renderTimeline({ scroll });
  fillTimeline();
}

export function renderTransfer(ticket) {
  const box = $("transfer-box");
  box.hidden = ticket.status === "closed";
  const select = $("transfer-select");
  const current = select.value;
  const options = state.agents
    .filter((a) => !ticket.assignee || a.id !== ticket.assignee.id)
    .map((a) => el("option", { value: String(a.id), text: a.id === ME.id ? `${a.name} (you)` : a.name }));
  select.replaceChildren(el("option", { value: "", text: "Transfer to…" }), ...options);
  select.value = options.some((o) => o.value === current) ? current : "";
}

export function renderWindows(ticket) {
  const now = serverNow();
  const node = $("conv-windows");
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

export async function action(fn) {
  hideError();
  try {
    await fn();
  } catch (error) {
    if (error.status !== 401) showError(error.message);
  }
  await Promise.all([loadTicket(), loadList()]).catch(() => {});
}
