// The queues, their counts and the ticket list: loaded a page at a time (more when
// scrolled to the bottom), and patched one row at a time by live events (live.js).

import { apiPage } from "./api.js";
import { controlBadge, fillBadge, statusBadge } from "./badges.js";
import { renderWindows, selectTicket } from "./conversation.js";
import { csatBadge } from "./csat.js";
import { $, avatar, el } from "./dom.js";
import { fetchCounts, filterParams, listQuery, matchesFilters, renderFilterCount } from "./filters.js";
import { duration, previewText, serverNow } from "./format.js";
import { announce, seeWaiting } from "./notify.js";
import { ME, state } from "./state.js";
import { tagChips } from "./tags.js";

const PAGE = 50;
const PAGE_MAX = 200; // the API's largest page
const NEAR_END_PX = 200;
const RETRY_FIRST_MS = 2000;
const RETRY_MAX_MS = 30000;

let retryTimer = null;
let retryDelay = RETRY_FIRST_MS;

export async function loadList() {
  // Everything again (on connect, after an action, or when a patch cannot be applied),
  // as many rows as are shown, so that the list does not shrink under the agent's eyes.
  // (The queue and the filters, issue 11: `list` says which list this is.)
  const list = listQuery();
  const limit = Math.min(PAGE_MAX, Math.max(PAGE, state.tickets.length));
  const params = new URLSearchParams({ queue: state.queue, ...filterParams(), limit: String(limit) });
  let page;
  let counts;
  try {
    [page, counts] = await Promise.all([apiPage(`/tickets?${params}`), fetchCounts()]);
  } catch (error) {
    if (list === listQuery()) listFailed(error);
    throw error;
  }
  if (list !== listQuery()) return; // the agent chose another queue or filter meanwhile
  clearTimeout(retryTimer);
  retryDelay = RETRY_FIRST_MS;
  state.listError = "";
  state.listLoaded = true;
  state.tickets = page.items;
  setEdge(page);
  announce(counts, page.items);
  state.counts = counts;
  renderList();
}

function listFailed(error) {
  // Never an empty list that looks like "no tickets": say that loading failed, keep
  // what was shown, and try again with a growing pause (a session that ended is said
  // by its own notice, and not retried).
  clearTimeout(retryTimer);
  if (error.status === 401) {
    state.listError = "";
    renderList();
    return;
  }
  if (error.status === 400) {
    // A filter the server does not accept (a tag renamed since the link was made):
    // asking again would not help. The filter bar can clear it.
    state.listError = `These tickets cannot be listed: ${error.message}`;
    renderList();
    return;
  }
  const seconds = Math.round(retryDelay / 1000);
  state.listError = `The tickets could not be loaded (${error.message}). Trying again in ${seconds} s…`;
  renderList();
  retryTimer = setTimeout(() => loadList().catch(() => {}), retryDelay);
  retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
}

export async function loadMore() {
  const { queue, listMore: after } = state;
  if (!after || state.listLoading) return;
  const list = listQuery();
  state.listLoading = true;
  renderMore();
  let page;
  try {
    page = await apiPage(`/tickets?${new URLSearchParams({ queue, ...filterParams(), limit: String(PAGE), after })}`);
  } catch {
    state.listLoading = false;
    renderMore(); // the button, the next scroll or the next reload asks again
    return;
  }
  state.listLoading = false;
  if (list !== listQuery() || after !== state.listMore) return; // reloaded meanwhile
  const shown = new Set(state.tickets.map((t) => t.id));
  state.tickets.push(...page.items.filter((t) => !shown.has(t.id)));
  seeWaiting(page.items);
  setEdge(page);
  renderList();
}

function setEdge(page) {
  state.listMore = page.next;
  const last = page.items[page.items.length - 1];
  if (last) state.listEdge = sortKey(last, state.queue);
}

// --- patching one row (live events) ------------------------------------------------

// Which queue a ticket is listed in, as agents.selectors.ticket_list decides it.
function inQueue(ticket, queue) {
  if (queue === "waiting") return ticket.status === "waiting";
  if (queue === "mine") return ticket.status !== "closed" && Boolean(ticket.assignee) && ticket.assignee.id === ME.id;
  if (queue === "all_open") return ticket.status !== "closed";
  return ticket.status === "closed" && Boolean(ticket.closed_at);
}

function micros(iso) {
  // Date.parse keeps milliseconds; the API's times have microseconds, which order ties.
  const fraction = (iso.match(/\.(\d+)/) || ["", ""])[1];
  return Date.parse(iso) * 1000 + Number(fraction.slice(3, 6).padEnd(3, "0"));
}

// The list's order: (opened_at, id) ascending; the closed queue (closed_at, id) descending.
function sortKey(ticket, queue) {
  return queue === "closed" ? [-micros(ticket.closed_at), -ticket.id] : [micros(ticket.opened_at), ticket.id];
}

function precedes(a, b) {
  return a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
}

export function patchTicket(id, ticket) {
  // `ticket` is what GET /tickets/{id} answered now; null when it is gone (or no longer
  // the agent's to see). It leaves the list, or takes its place there: where the
  // queue's order puts it among the loaded rows; past them, it is on a page not loaded
  // yet and will come with it.
  const index = state.tickets.findIndex((t) => t.id === id);
  if (index >= 0) state.tickets.splice(index, 1);
  if (!ticket || !inQueue(ticket, state.queue) || !matchesFilters(ticket)) return;
  const key = sortKey(ticket, state.queue);
  if (state.listMore && state.listEdge && precedes(state.listEdge, key)) return;
  const at = state.tickets.findIndex((t) => precedes(key, sortKey(t, state.queue)));
  state.tickets.splice(at < 0 ? state.tickets.length : at, 0, ticket);
}

// --- rendering ---------------------------------------------------------------------

export function renderList() {
  for (const node of document.querySelectorAll("[data-count]")) {
    node.textContent = state.counts ? String(state.counts[node.dataset.count]) : "–";
  }
  for (const button of document.querySelectorAll(".queue")) {
    button.setAttribute("aria-current", button.dataset.queue === state.queue ? "page" : "false");
  }
  document.title = state.counts && state.counts.waiting ? `(${state.counts.waiting}) Inbox · Helpdesk` : "Inbox · Helpdesk";
  const list = $("ticket-list");
  // A live update redraws the rows: the one the agent's keyboard is on keeps the focus.
  const focusedRow = document.activeElement?.closest?.("#ticket-list .ticket-row");
  const focusedId = focusedRow ? Number(focusedRow.dataset.ticketId) : null;
  redraw(list, state.tickets.map(ticketRow));
  if (focusedId) {
    list.querySelector(`.ticket-row[data-ticket-id="${focusedId}"] .ticket-link`)?.focus({ preventScroll: true });
  }
  $("ticket-list-empty").hidden = state.tickets.length > 0 || !state.listLoaded || Boolean(state.listError);
  $("ticket-list-error").hidden = !state.listError;
  $("ticket-list-error").textContent = state.listError;
  renderMore();
  renderFilterCount();
  refreshTimes();
  // A first page that does not fill the sidebar cannot be scrolled: fetch the next one.
  if (state.listMore && !state.listLoading && list.scrollHeight <= list.clientHeight + NEAR_END_PX) {
    loadMore();
  }
}

// What each row was drawn from (the ticket, whether it is the open one, the list's query:
// a row is made of nothing else). A redraw keeps the element of a row that would come
// out the same and moves only what changed place: live events redraw the list often, and
// a row replaced between the press and the release of a click loses the click (the
// browser sends it to the list, not to the row).
const drawnAs = new WeakMap();

function redraw(list, rows) {
  const before = new Map();
  for (const node of list.querySelectorAll(":scope > .ticket-row")) before.set(node.dataset.ticketId, node);
  const next = rows.map((row) => {
    const old = before.get(row.dataset.ticketId);
    return old && drawnAs.get(old) === drawnAs.get(row) ? old : row;
  });
  const keep = new Set(next);
  for (const node of [...list.children]) if (!keep.has(node)) node.remove();
  let cursor = list.firstElementChild;
  for (const node of next) {
    if (node === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(node, cursor);
  }
}

// A row redrawn while pressed all the same: the press and the release on the same ticket
// open it, as the click would have.
let pressed = null;

export function wireList() {
  const list = $("ticket-list");
  list.addEventListener("scroll", onListScroll, { passive: true });
  list.addEventListener("pointerdown", (event) => {
    const row = event.target.closest(".ticket-row");
    pressed = row && event.button === 0 ? { node: event.target, id: row.dataset.ticketId } : null;
  });
  list.addEventListener("pointerup", (event) => {
    const press = pressed;
    pressed = null;
    if (!press || press.node.isConnected || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    const row = event.target.closest(".ticket-row");
    if (row && row.dataset.ticketId === press.id) selectTicket(Number(press.id));
  });
}

function renderMore() {
  const list = $("ticket-list");
  list.querySelector(".list-more")?.remove();
  if (!state.listMore) return;
  list.append(
    el(
      "li",
      { class: "list-more" },
      el("button", {
        type: "button",
        class: "link-button",
        text: state.listLoading ? "Loading more tickets…" : "More tickets",
        disabled: state.listLoading,
        onclick: () => loadMore(),
      }),
    ),
  );
}

function onListScroll() {
  const list = $("ticket-list");
  if (list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_END_PX) loadMore();
}

function ticketRow(ticket) {
  const control = controlBadge(ticket);
  const row = el(
    "li",
    {
      class: `ticket-row${ticket.id === state.ticketId ? " selected" : ""}${ticket.flagged ? " flagged" : ""}`,
      "data-ticket-id": String(ticket.id),
    },
    el(
      "a",
      {
        href: `/tickets/${ticket.id}/?${listQuery()}`,
        class: "ticket-link",
        onclick: (event) => {
          if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
          event.preventDefault();
          selectTicket(ticket.id);
        },
      },
      avatar(ticket.contact),
      el(
        "span",
        { class: "ticket-main" },
        el(
          "span",
          { class: "ticket-top" },
          el("span", { class: "ticket-name", text: ticket.contact.name }),
          el("span", { class: "ticket-wait", "data-since": waitSince(ticket) }),
        ),
        el("span", { class: "ticket-preview", text: previewText(ticket.last_message) }),
        el(
          "span",
          { class: "ticket-meta" },
          fillBadge(el("span"), statusBadge(ticket), "status"),
          control && fillBadge(el("span"), control, "control"),
          csatBadge(ticket),
          el("span", { class: "ticket-page", text: ticket.page_name }),
          tagChips(ticket.tags),
        ),
      ),
    ),
  );
  drawnAs.set(row, JSON.stringify([ticket, ticket.id === state.ticketId, listQuery()]));
  return row;
}

function waitSince(ticket) {
  if (ticket.status === "closed") return ticket.closed_at ? `closed:${Date.parse(ticket.closed_at)}` : "";
  return ticket.waiting_since ? `waiting:${Date.parse(ticket.waiting_since)}` : "";
}

export function refreshTimes() {
  const now = serverNow();
  for (const node of document.querySelectorAll("[data-since]")) {
    const [kind, at] = (node.dataset.since || "").split(":");
    if (!at) {
      node.textContent = "";
      continue;
    }
    node.textContent = kind === "closed" ? `closed ${duration(now - Number(at))} ago` : `waiting ${duration(now - Number(at))}`;
    node.classList.toggle("long-wait", kind === "waiting" && now - Number(at) > 15 * 60000);
  }
  if (state.ticket) renderWindows(state.ticket);
}
