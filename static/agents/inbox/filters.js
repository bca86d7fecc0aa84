// The list's filters (issue 11): page, tag, assignee and "needs reply" (the customer
// wrote last), on top of the queue. They live in the URL
// (`/?queue=all_open&tag=refund&assignee=me&needs_reply=1`), so a reload keeps them and
// Back/Forward step through them; the API's GET /tickets and GET /queues take the same
// parameters. A filter bar above the list (on a phone, a "Filters" button opens it) with
// how many tickets match and a way to clear them.
//
// Live updates: a ticket that a live event names is kept in the list only while it
// matches (`matchesFilters`, the server's rules read from the ticket as the API shows
// it), so one that stops matching leaves and one that starts matching comes in.

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { loadList, renderList } from "./list.js";
import { ME, state } from "./state.js";

const KEYS = ["page", "tag", "assignee", "needs_reply"];
const QUEUES = ["waiting", "mine", "all_open", "closed"];

export const filters = read(location.search);
let options = { pages: [], tags: [], agents: [] };
let matching = null; // GET /queues with the filters: how many of each queue match

function read(search) {
  const params = new URLSearchParams(search);
  return {
    page: params.get("page") || "",
    tag: params.get("tag") || "",
    assignee: params.get("assignee") || "",
    needs_reply: ["1", "true"].includes(params.get("needs_reply") || "") ? "1" : "",
  };
}

export function filtersActive() {
  return KEYS.some((key) => filters[key]);
}

function activeCount() {
  return KEYS.filter((key) => filters[key]).length;
}

export function filterParams() {
  // The filters as API (and URL) parameters: only those that are set.
  const params = {};
  for (const key of KEYS) if (filters[key]) params[key] = filters[key];
  return params;
}

export function listQuery() {
  // The query of the inbox's URL: the queue, then the filters.
  return new URLSearchParams({ queue: state.queue, ...filterParams() }).toString();
}

export function matchesFilters(ticket) {
  // Whether a ticket (as GET /tickets/{id} shows it) is in the filtered list: the same
  // rules as agents.selectors.ticket_filter.
  if (filters.page && ticket.page_id !== filters.page) return false;
  if (filters.tag) {
    const wanted = filters.tag.toLowerCase();
    if (!(ticket.tags || []).some((tag) => tag.name.toLowerCase() === wanted)) return false;
  }
  if (filters.assignee === "me" && !(ticket.assignee && ticket.assignee.id === ME.id)) return false;
  if (filters.assignee === "none" && ticket.assignee) return false;
  if (/^\d+$/.test(filters.assignee) && !(ticket.assignee && String(ticket.assignee.id) === filters.assignee)) return false;
  if (filters.needs_reply && !ticket.needs_reply) return false;
  return true;
}

export async function fetchCounts() {
  // The queues' counts (the tabs, and new waiting tickets announced), and with filters
  // how many of each match.
  const wanted = filtersActive() ? new URLSearchParams(filterParams()).toString() : null;
  const [counts, filtered] = await Promise.all([api("GET", "/queues"), wanted ? api("GET", `/queues?${wanted}`) : null]);
  if (wanted === (filtersActive() ? new URLSearchParams(filterParams()).toString() : null)) matching = filtered;
  return counts;
}

// --- the bar ------------------------------------------------------------------------

function option(value, text) {
  return el("option", { value, text });
}

function fillSelect(select, first, choices, value) {
  select.replaceChildren(option("", first), ...choices.map(([v, t]) => option(v, t)));
  // A value the options do not know (a tag renamed since, a link from elsewhere) is
  // kept as it is: the list says what the server thinks of it.
  if (value && !choices.some(([v]) => v === value)) select.append(option(value, value));
  select.value = value;
}

export function renderFilters() {
  fillSelect(
    $("filter-page"),
    "All pages",
    options.pages.map((p) => [p.id, p.name]),
    filters.page,
  );
  fillSelect(
    $("filter-tag"),
    "All tags",
    options.tags.map((t) => [t.name, t.active ? t.name : `${t.name} (no longer in use)`]),
    filters.tag,
  );
  fillSelect(
    $("filter-assignee"),
    "Anyone",
    [["me", "Me"], ["none", "Nobody"], ...options.agents.filter((a) => a.id !== ME.id).map((a) => [String(a.id), a.name])],
    filters.assignee,
  );
  $("filter-needs-reply").checked = Boolean(filters.needs_reply);
  const active = activeCount();
  $("filters-toggle-count").textContent = active ? String(active) : "";
  $("filters-toggle-count").hidden = !active;
  $("filters-clear").hidden = !active;
  renderFilterCount();
}

export function renderFilterCount() {
  const node = $("filter-count");
  const counts = filtersActive() ? matching : state.counts;
  if (!counts || !state.listLoaded) {
    node.textContent = "";
    return;
  }
  const n = counts[state.queue];
  if (filtersActive()) node.textContent = n === 1 ? "1 ticket matches" : `${n} tickets match`;
  else node.textContent = n === 1 ? "1 ticket" : `${n} tickets`;
}

function apply(next, { push = true } = {}) {
  // New filters: in the URL (a new history entry: Back returns to the previous ones),
  // then the list again from its start.
  Object.assign(filters, next);
  matching = null;
  // The path stays: a ticket open beside the list (wide screens) stays open.
  if (push) history.pushState({ id: state.ticketId, fromList: false }, "", `${location.pathname}?${listQuery()}`);
  state.tickets = [];
  state.listLoaded = false;
  state.listMore = null;
  state.listEdge = null;
  state.listError = "";
  renderFilters();
  renderList();
  loadList().catch(() => {});
}

export function clearFilters() {
  apply({ page: "", tag: "", assignee: "", needs_reply: "" });
}

export function filtersFromUrl() {
  // Back or Forward: the URL's queue and filters, if they differ from the list's.
  const next = read(location.search);
  const queue = new URLSearchParams(location.search).get("queue");
  const queueNow = QUEUES.includes(queue) ? queue : "waiting";
  const same = KEYS.every((key) => next[key] === filters[key]) && queueNow === state.queue;
  if (same) return;
  state.queue = queueNow;
  apply(next, { push: false });
}

async function loadOptions() {
  try {
    options = await api("GET", "/ticket-filters");
  } catch {
    return; // the selects keep what they show; the next event that changes tags asks again
  }
  renderFilters();
}

export function optionsChanged() {
  // An admin changed the tags (or the agent's pages changed): the choices again.
  loadOptions();
}

export function wireFilters() {
  $("filter-page").addEventListener("change", (event) => apply({ page: event.target.value }));
  $("filter-tag").addEventListener("change", (event) => apply({ tag: event.target.value }));
  $("filter-assignee").addEventListener("change", (event) => apply({ assignee: event.target.value }));
  $("filter-needs-reply").addEventListener("change", (event) => apply({ needs_reply: event.target.checked ? "1" : "" }));
  $("filters-clear").addEventListener("click", clearFilters);
  const toggle = $("filters-toggle");
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    $("filter-panel").classList.toggle("open", open);
    if (open) $("filter-page").focus();
  });
  window.addEventListener("popstate", filtersFromUrl);
  renderFilters();
  loadOptions();
}
