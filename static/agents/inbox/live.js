// Live events (from socket.js) applied to what the page shows: each event names a
// ticket, a conversation or a message; the page fetches only those and patches them
// into the list and the open conversation. Everything is fetched again on (re)connect,
// for an event it does not know, and when a patch cannot be applied. While the open
// conversation loads, events wait for it: which one is open is decided when they are
// applied, and the page it loads may have been read before them.
//
//   ticket.updated        GET /tickets/{id}: its row (in, out, moved), the open ticket;
//                         and GET /queues for the counts
//   message.created       GET /tickets/{open}/messages/{id} when it is in the open
//   message.updated       conversation; the rows of its conversation (preview, waiting
//                         time) through GET /tickets/{id}
//   conversation.updated  those rows and the open ticket (thread control, contact); for
//                         the open one, the newest messages a receipt may have changed
//   contact.updated       the customer panel's (context.js): the note on a customer
//   note.created          GET /tickets/{open}/notes when it is in the open conversation
//   mention.created/read  GET /mentions (the agent's own group: notes.js)

import { api, apiPage } from "./api.js";
import { customerEvent } from "./context.js";
import { loadTicket, precedes, putMessage, showTicket } from "./conversation.js";
import { fetchCounts, filtersActive, listQuery, optionsChanged } from "./filters.js";
import { loadList, patchTicket, renderList } from "./list.js";
import { loadMentions, mentionReceived, refreshNotes } from "./notes.js";
import { announcePatched } from "./notify.js";
import { state } from "./state.js";

const BURST_MS = 100; // events come in bursts (a webhook batch): one round of fetches each
const MAX_TICKETS = 20; // more rows than this in one burst: the list is cheaper in one go
const MAX_MESSAGES = 200; // the API's largest page

let pending = null;
// Batches are applied one after another: a batch's fetches may take longer than the
// next one's, and what it fetched before a receipt must not overwrite what the next
// fetched after it (a message shown Sent again after Read).
let applying = Promise.resolve();

function fresh() {
  return {
    events: [],
    tickets: new Set(),
    conversations: new Set(),
    messages: new Map(), // conversation id → the ids of its messages named
    receipts: new Set(), // conversations whose receipts may have changed our messages
    notes: new Set(), // conversations with a new note
    counts: false,
    all: false,
  };
}

export function receive(event) {
  customerEvent(event); // the customer panel refetches what concerns its customer
  take(event);
}

function take(event) {
  // Which conversation is open is decided when the batch is applied, not here: the one
  // being opened is not known yet (its ticket is on its way).
  pending = pending || fresh();
  const conversation = event.conversation_id;
  switch (event.event) {
    case "ticket.updated":
      pending.tickets.add(event.ticket_id);
      pending.conversations.add(conversation);
      pending.counts = true;
      break;
    case "message.created":
    case "message.updated":
      pending.conversations.add(conversation);
      if (!pending.messages.has(conversation)) pending.messages.set(conversation, new Set());
      pending.messages.get(conversation).add(event.message_id);
      break;
    case "conversation.updated":
      pending.conversations.add(conversation);
      pending.receipts.add(conversation);
      break;
    case "tags.changed": // an admin changed the tags: the filter's choices and the chips
      optionsChanged();
      pending.all = true;
      break;
    case "contact.updated":
      return; // the note on a customer: only the customer panel shows it
    case "note.created":
      // Only the open conversation shows notes: its notes are fetched again.
      pending.notes.add(conversation);
      break;
    case "mention.created":
    case "mention.read":
      mentionReceived(event);
      return;
    default:
      if (event.event === "pages.changed") optionsChanged(); // the page filter's choices
      pending.all = true; // pages.changed, or an event this page does not know
  }
  pending.events.push(event);
  if (pending.scheduled) return;
  pending.scheduled = true;
  setTimeout(() => {
    const batch = pending;
    pending = null;
    applying = applying.then(() => apply(batch)).catch(refetchAll);
  }, BURST_MS);
}

export function refetchAll() {
  loadList().catch(() => {});
  loadTicket().catch(() => {});
  loadMentions();
}

async function apply(batch) {
  if (batch.all) {
    refetchAll();
    return;
  }
  if (state.loading) {
    // A conversation is being loaded: the server may have read its page before what
    // these events name (a message that came as the agent opened it would be missed,
    // CI saw one). They are applied again once it is in, without waiting here: a load
    // that hangs holds no other batch back.
    const again = () => batch.events.forEach(take);
    state.loading.then(again, again);
    return;
  }
  const open = state.ticket;
  const ids = new Set(batch.tickets);
  for (const row of state.tickets) {
    if (batch.conversations.has(row.conversation_id)) ids.add(row.id);
  }
  if (open && batch.conversations.has(open.conversation_id)) ids.add(open.id);
  if (ids.size > MAX_TICKETS) {
    refetchAll();
    return;
  }
  const openId = open ? open.id : null;
  const conversation = open ? open.conversation_id : null;
  if (batch.notes.has(conversation)) refreshNotes().catch(() => {});
  const list = listQuery(); // the queue and the filters
  const [tickets, counts, messages, receipts] = await Promise.all([
    Promise.all([...ids].map(ticketOrGone)),
    // (Filtered, a message can move a row in or out: "needs reply". Count again.)
    batch.counts || (filtersActive() && ids.size) ? fetchCounts() : null,
    openId ? Promise.all([...(batch.messages.get(conversation) || [])].map((id) => messageOrGone(openId, id))) : [],
    openId && batch.receipts.has(conversation) ? recentMessages(openId) : [],
  ]);

  // The list: each row named, in, out or moved; then the counts.
  const named = [...ids];
  if (list === listQuery()) {
    // (Otherwise the agent chose another queue or filter meanwhile, and it is being fetched.)
    for (const [index, id] of named.entries()) patchTicket(id, tickets[index]);
  }
  if (counts) {
    announcePatched(counts, tickets.filter(Boolean));
    state.counts = counts;
  }
  renderList();

  // The open conversation, if it was named and the agent is still on it.
  if (!ids.has(openId) || state.ticketId !== openId || !state.ticket) return;
  const ticket = tickets[named.indexOf(openId)];
  if (!ticket || ticket.handover_timestamp !== state.ticket.handover_timestamp) {
    // Gone, or reopened: what is context has changed. Start the conversation over.
    await loadTicket();
    return;
  }
  for (const message of [...receipts, ...messages]) {
    if (message) putMessage(message);
  }
  showTicket(ticket);
}

async function ticketOrGone(id) {
  try {
    return await api("GET", `/tickets/${id}`);
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

async function messageOrGone(ticketId, id) {
  try {
    return await api("GET", `/tickets/${ticketId}/messages/${id}`);
  } catch (error) {
    if (error.status === 404) return null;
    throw error;
  }
}

async function recentMessages(ticketId) {
  // A receipt moves our sent messages to delivered or read, up to a time: fetch the
  // newest messages back to the oldest loaded one that a receipt could still change.
  // Back to that message, not as many as this page shows after it: the server may hold
  // newer ones this page has not been told of yet (their message.created is in this
  // burst, or still on its way), and a page of that size would stop short of it (the
  // closing message stayed Sent when the bot's answer came in the same burst as the
  // customer's read receipt).
  const oldest = state.messages.find((m) => m.direction === "out" && (m.status === "sent" || m.status === "delivered"));
  if (!oldest) return [];
  const count = state.messages.length - state.messages.indexOf(oldest);
  if (count > MAX_MESSAGES) throw new Error("too many messages to patch");
  let items = [];
  let query = new URLSearchParams({ limit: count });
  for (;;) {
    const page = await apiPage(`/tickets/${ticketId}/messages?${query}`);
    items = [...page.items, ...items];
    if (!page.next || !page.items.length || !precedes(oldest, page.items[0])) return items;
    if (items.length >= MAX_MESSAGES) throw new Error("too many messages to patch");
    query = new URLSearchParams({ before: page.next }); // the page before (50 messages)
  }
}
