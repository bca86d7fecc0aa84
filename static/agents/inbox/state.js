// What the page knows, shared by every module: the signed-in agent (from the
// template's data attributes) and one mutable `state` object. Modules change its
// properties; none replaces it.

export const app = document.getElementById("app");
export const ME = { id: Number(app.dataset.userId), username: app.dataset.username };
export const LOGIN_URL = app.dataset.loginUrl;

const QUEUES = ["waiting", "mine", "all_open", "closed"];

export const state = {
  queue: QUEUES.includes(new URLSearchParams(location.search).get("queue"))
    ? new URLSearchParams(location.search).get("queue")
    : "waiting",
  tickets: [], // the queue's rows loaded so far, in its order
  listMore: null, // cursor of the list's next page; null: every row is loaded
  listEdge: null, // the sort key of the last row the server sent (where the cursor points)
  listLoading: false,
  listLoaded: false, // the shown queue was loaded once: an empty list means no tickets
  listError: "", // why the list could not be loaded, while it is retried
  counts: null,
  ticketId: Number(app.dataset.ticketId) || null,
  ticket: null,
  loading: null, // the open ticket's load in flight (conversation.js), if any
  messages: [], // the newest pages of the conversation loaded so far, oldest first
  olderMore: null, // cursor of the page before the oldest loaded message; null: none older
  olderLoading: false,
  local: [], // replies typed here, not yet accepted by the server
  drafts: new Map(), // what was typed in each ticket's composer, kept when switching
  notFound: false, // the ticket asked for does not exist or is not the agent's to see
  listScroll: 0, // where the list was when a ticket was opened (a phone hides it meanwhile)
  openContext: new Set(), // ids of the messages in context groups the agent unfolded
  seenFor: null, // the ticket whose opening was marked seen (Messenger's mark_seen)
  lastTypingAt: 0,
  waitingSeen: null, // ids of waiting tickets already announced
  live: false,
  notes: [], // the open conversation's private notes (notes.js), oldest first
  mode: "reply", // what the composer writes: "reply" (to the customer) or "note"
};
