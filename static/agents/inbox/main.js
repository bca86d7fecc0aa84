// The agent inbox: native ES modules, no build step. This entry module wires the page
// and starts it; the others only define things, so the order in which they are
// evaluated does not matter (imports between them are used when called, not on load).
//
// State comes from the JSON API (/api/v1/, session + CSRF header), long lists a page at
// a time; /ws/inbox/ only says what changed (small events with ids), and the page
// fetches just that and patches it in (live.js). Everything a customer (or the bot, or
// Meta) wrote is put in the page with textContent or as a DOM property, never parsed as
// HTML.

import { api } from "./api.js";
import { wireAttachments } from "./attachments.js";
import { sendReply, typing } from "./composer.js";
import { action, backToList, focusTicket, loadTicket, onTimelineScroll, selectTicket } from "./conversation.js";
import { openCloseDialog, openProfileDialog, openTransferDialog, wireDialogs } from "./dialogs.js";
import { $ } from "./dom.js";
import { listQuery, wireFilters } from "./filters.js";
import { loadList, refreshTimes, renderList, wireList } from "./list.js";
import { loadMentions, noteMode, postNote, wireNotes } from "./notes.js";
import { renderNotifyToggle, toggleNotify } from "./notify.js";
import { wireReplies } from "./replies.js";
import { wirePresence } from "./routing.js";
import { wireShortcuts } from "./shortcuts.js";
import { connect } from "./socket.js";
import { wireCustomerPanel } from "./context.js"; // issue 11: the customer panel
import { wireSearch } from "./search.js"; // issue 11: search
import { state } from "./state.js";
import { wireTags } from "./tags.js";

function wire() {
  for (const button of document.querySelectorAll(".queue")) {
    button.addEventListener("click", () => {
      state.queue = button.dataset.queue;
      history.replaceState(history.state, "", `${location.pathname}?${listQuery()}`);
      state.tickets = [];
      state.listLoaded = false;
      state.listMore = null;
      state.listEdge = null;
      renderList();
      loadList().catch(() => {});
    });
  }
  const text = $("composer-text");
  // Saved replies and @ completion first: a key their pickers use goes no further.
  wireReplies();
  wireNotes();
  const submit = () => (noteMode() ? postNote() : sendReply());
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  text.addEventListener("input", () => noteMode() || typing()); // no typing indicator for a note
  $("send-btn").addEventListener("click", submit);
  wireShortcuts();
  $("claim-btn").addEventListener("click", async () => {
    await action(() => api("POST", `/tickets/${state.ticket.id}/claim`));
    focusTicket(); // the button is gone: on to the reply box
  });
  const takeOver = () => action(() => api("POST", `/tickets/${state.ticket.id}/take-control`));
  $("take-over-btn").addEventListener("click", takeOver);
  $("take-over-closed-btn").addEventListener("click", takeOver);
  const requestControl = () => action(() => api("POST", `/tickets/${state.ticket.id}/request-control`));
  $("request-control-btn").addEventListener("click", requestControl);
  $("ask-again-btn").addEventListener("click", requestControl);
  $("transfer-btn").addEventListener("click", openTransferDialog);
  $("close-btn").addEventListener("click", openCloseDialog);
  wireDialogs();
  wireAttachments();
  for (const button of document.querySelectorAll("[data-back]")) button.addEventListener("click", backToList);
  $("notify-toggle").addEventListener("click", toggleNotify);
  $("profile-btn").addEventListener("click", openProfileDialog);
  wireList();
  $("timeline").addEventListener("scroll", onTimelineScroll, { passive: true });
  window.addEventListener("popstate", () => {
    const match = location.pathname.match(/^\/tickets\/(\d+)\//);
    selectTicket(match ? Number(match[1]) : null, { push: false });
  });
  wireFilters();
  wireTags();
  setInterval(refreshTimes, 30000);
}

async function start() {
  wire();
  wireCustomerPanel();
  wireSearch();
  renderNotifyToggle();
  wirePresence();
  renderList();
  connect();
  loadMentions();
  await Promise.all([loadList(), loadTicket({ scroll: true, focus: true })]).catch(() => {});
}

start();
