// Search (issue 11): one box above the queues, over contacts (name, PSID) and message
// texts. While it holds a query, the sidebar shows the results instead of the queue:
// tickets, newest match first, each with the customer, page, where it stands and its
// newest matching messages, the matches marked. Clicking one opens the ticket and
// scrolls to the message. Esc, emptying the box or choosing a queue goes back.
//
// The marks come from the server's offsets: the text is split into text nodes and
// <mark> elements, never parsed as HTML.

import { apiPage } from "./api.js";
import { fillBadge, statusBadge } from "./badges.js";
import { loadOlder, selectTicket } from "./conversation.js";
import { $, avatar, el } from "./dom.js";
import { clock } from "./format.js";
import { state } from "./state.js";

const DEBOUNCE_MS = 300;
const PAGE = 20;
const FIND_OLDER_PAGES = 5; // scrolling to a message: at most this many older pages fetched

const AUTHOR = { customer: "Customer", bot: "Bot", page_inbox: "Page Inbox", agent: "Agent", system: "System" };

const search = {
  query: "", // what the shown results are for ("" : no search)
  results: [],
  next: null, // cursor of the next page
  loading: false,
  error: "",
  seq: 0, // answers to an older query are dropped
};
let timer = null;

export function wireSearch() {
  const input = $("search-input");
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => run(input.value), DEBOUNCE_MS);
  });
  $("search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    run(input.value);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && input.value) {
      event.preventDefault();
      clear();
    }
  });
  for (const button of document.querySelectorAll(".queue")) button.addEventListener("click", clear);
  window.addEventListener("resize", () => {
    if (search.query) place();
  });
}

function clear() {
  clearTimeout(timer);
  $("search-input").value = "";
  run("");
}

async function run(value) {
  const query = value.trim();
  if (query === search.query && !search.error) return;
  const seq = ++search.seq;
  search.query = query;
  search.results = [];
  search.next = null;
  search.error = "";
  if (!query) {
    search.loading = false;
    render();
    return;
  }
  search.loading = true;
  render();
  await fetchPage(seq, null);
}

async function fetchPage(seq, after) {
  const params = new URLSearchParams({ q: search.query, limit: String(PAGE) });
  if (after) params.set("after", after);
  let page;
  try {
    page = await apiPage(`/search?${params}`);
  } catch (error) {
    if (seq !== search.seq) return;
    search.loading = false;
    search.error = error.message;
    render();
    return;
  }
  if (seq !== search.seq) return; // the agent typed on
  search.loading = false;
  search.results.push(...page.items);
  search.next = page.next;
  render();
}

function more() {
  if (!search.next || search.loading) return;
  search.loading = true;
  render();
  fetchPage(search.seq, search.next);
}

// --- rendering ----------------------------------------------------------------------------

function render() {
  const active = Boolean(search.query);
  $("search-results").hidden = !active;
  // Over the queue's list, which keeps its place (and its scroll) underneath, out of
  // reach meanwhile; from under the queues down.
  $("ticket-list").inert = active;
  if (!active) return;
  place();
  const status = $("search-status");
  status.classList.toggle("form-error", Boolean(search.error));
  if (search.error) status.textContent = search.error;
  else if (search.loading && !search.results.length) status.textContent = "Searching…";
  else if (!search.results.length) status.textContent = `Nothing matches “${search.query}”.`;
  else status.textContent = `${search.results.length}${search.next ? "+" : ""} ticket${search.results.length === 1 && !search.next ? "" : "s"} for “${search.query}”`;
  const list = $("search-list");
  list.replaceChildren(...search.results.map(resultNode));
  if (search.next) {
    list.append(
      el(
        "li",
        { class: "list-more" },
        el("button", {
          type: "button",
          class: "link-button",
          text: search.loading ? "Loading more results…" : "More results",
          disabled: search.loading,
          onclick: more,
        }),
      ),
    );
  }
}

function place() {
  const queues = document.querySelector(".queues");
  $("search-results").style.top = `${queues.offsetTop + queues.offsetHeight}px`;
}

export function marked(text, highlights) {
  // `text` with its [start, end) ranges (code points) in <mark>: text nodes only.
  const chars = Array.from(text);
  const parts = [];
  let at = 0;
  for (const [start, end] of highlights || []) {
    if (start < at || end <= start || end > chars.length) continue;
    if (start > at) parts.push(chars.slice(at, start).join(""));
    parts.push(el("mark", { text: chars.slice(start, end).join("") }));
    at = end;
  }
  if (at < chars.length) parts.push(chars.slice(at).join(""));
  return parts;
}

function resultNode(result) {
  const open = (messageId) => (event) => {
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    openResult(result.ticket_id, messageId);
  };
  const href = (messageId) => `/tickets/${result.ticket_id}/?queue=${state.queue}${messageId ? `#message-${messageId}` : ""}`;
  const psidShown = result.psid_highlights.length > 0;
  const head = el(
    "a",
    { class: "search-hit-head", href: href(null), onclick: open(null) },
    avatar(result.contact),
    el(
      "span",
      { class: "ticket-main" },
      el("span", { class: "ticket-top" }, el("span", { class: "ticket-name" }, ...marked(result.contact.name, result.contact_highlights))),
      psidShown ? el("span", { class: "search-psid" }, "PSID ", ...marked(result.contact.psid, result.psid_highlights)) : null,
      el(
        "span",
        { class: "ticket-meta" },
        fillBadge(el("span"), statusBadge({ status: result.status, assignee: result.assignee }), "status"),
        el("span", { class: "ticket-page", text: result.page_name }),
        el("span", { class: "search-ticket-id muted", text: `#${result.ticket_id}` }),
      ),
    ),
  );
  const messages = result.messages.map((message) =>
    el(
      "li",
      {},
      el(
        "a",
        { class: "search-message", href: href(message.id), onclick: open(message.id), "data-message-id": String(message.id) },
        el(
          "span",
          { class: "search-message-meta muted" },
          `${message.author ? message.author.name : AUTHOR[message.author_kind] || message.author_kind} · ${day(message.timestamp)}`,
        ),
        el("span", { class: "search-snippet" }, ...marked(message.snippet, message.highlights)),
      ),
    ),
  );
  const extra = result.match_count - result.messages.length;
  return el(
    "li",
    { class: "search-hit", "data-ticket-id": String(result.ticket_id) },
    head,
    messages.length ? el("ul", { class: "search-messages" }, ...messages) : null,
    extra > 0 ? el("p", { class: "search-extra muted", text: `${extra} more matching message${extra === 1 ? "" : "s"} in this ticket` }) : null,
  );
}

function day(ms) {
  const date = new Date(ms);
  const today = new Date();
  if (date.toDateString() === today.toDateString()) return clock(ms);
  const options = { day: "numeric", month: "short" };
  if (date.getFullYear() !== today.getFullYear()) options.year = "numeric";
  return `${date.toLocaleDateString([], options)}, ${clock(ms)}`;
}

// --- opening a result ------------------------------------------------------------------------

async function openResult(ticketId, messageId) {
  for (const node of document.querySelectorAll(".search-hit")) {
    node.classList.toggle("selected", Number(node.dataset.ticketId) === ticketId);
  }
  await selectTicket(ticketId);
  if (messageId) await scrollToMessage(ticketId, messageId);
}

async function scrollToMessage(ticketId, messageId) {
  // The message, where the timeline shows it: older pages fetched while it is not there
  // (a few at most), its folded stretch unfolded; then it is scrolled to and flashed.
  const find = () => document.querySelector(`#timeline [data-message-id="${messageId}"]`);
  for (let page = 0; !find() && state.olderMore && page < FIND_OLDER_PAGES; page += 1) {
    if (state.ticketId !== ticketId) return;
    await loadOlder();
  }
  const node = find();
  if (!node || state.ticketId !== ticketId) return;
  const fold = node.closest("details");
  if (fold && !fold.open) fold.open = true;
  node.scrollIntoView({ block: "center" });
  node.classList.add("search-target");
  setTimeout(() => node.classList.remove("search-target"), 4000);
}
