// The reply box: its lock, sending (the reply shows at once as a local message until
// the server has it), retrying, and the typing indicator.

import { api } from "./api.js";
import { hasFiles, renderFiles, sendFiles } from "./attachments.js";
import { action, loadTicket, putMessage } from "./conversation.js";
import { $, el } from "./dom.js";
import { clock } from "./format.js";
import { composerLocked } from "./notes.js";
import { unfilledGuard } from "./replies.js";
import { ME, state } from "./state.js";
import { renderTimeline } from "./timeline.js";

const TYPING_EVERY_MS = 4000; // the server throttles too (10 s per conversation)

export function renderComposer(ticket) {
  const reason = ticket.lock_reason;
  const text = $("composer-text");
  // Locked, not cleared: nothing typed is lost when control goes away. (A note needs
  // no control: notes.js.)
  text.disabled = composerLocked(ticket);
  $("send-btn").disabled = composerLocked(ticket);
  // The ways back in, Take over first: shown with the lock (never without a reason).
  $("composer-lock").hidden = !reason;
  $("composer-lock-reason").textContent = reason;
  $("take-over-btn").hidden = !ticket.can_take_over;
  $("request-control-btn").hidden = !ticket.can_request_control;
  renderFiles(); // the paper clip locks with the reply box
}

export function sendReply() {
  if (hasFiles()) return sendFiles(); // the text goes with them, first
  const text = $("composer-text").value;
  if (!text.trim() || !state.ticket || $("composer-text").disabled) return;
  if (unfilledGuard(text)) return; // a saved reply's {placeholder} is never sent
  $("composer-text").value = "";
  state.drafts.delete(state.ticket.id);
  const local = {
    text,
    at: Date.now(),
    ticketId: state.ticket.id,
    error: null,
    known: new Set(state.messages.map((m) => m.id)),
  };
  state.local.push(local);
  renderTimeline({ scroll: true });
  sendLocal(local);
}

async function sendLocal(local) {
  local.error = null;
  renderTimeline({ scroll: true });
  try {
    const message = await api("POST", `/tickets/${local.ticketId}/reply`, { text: local.text });
    state.local = state.local.filter((l) => l !== local);
    if (state.ticketId === local.ticketId && !state.messages.some((m) => m.id === message.id)) {
      putMessage(message);
    }
  } catch (error) {
    local.error = error.message;
  }
  if (state.ticketId === local.ticketId) renderTimeline({ scroll: true });
  loadTicket().catch(() => {});
}

export function retryMessage(id) {
  action(() => api("POST", `/messages/${id}/retry`));
}

export function typing() {
  const ticket = state.ticket;
  if (!ticket || ticket.lock_reason || !$("composer-text").value.trim()) return;
  const now = Date.now();
  if (now - state.lastTypingAt < TYPING_EVERY_MS) return;
  state.lastTypingAt = now;
  api("POST", `/tickets/${ticket.id}/typing`).catch(() => {});
}

export function acceptedAlready(local) {
  // A refetch (after a live event) can bring the reply before its POST has answered.
  return state.messages.some(
    (m) => m.author_kind === "agent" && m.author && m.author.id === ME.id && m.text === local.text.trim() && !local.known.has(m.id),
  );
}

export function localNode(local) {
  const status = local.error
    ? el(
        "div",
        { class: "msg-status failed" },
        el("span", { text: `Not sent: ${local.error}` }),
        el("button", { type: "button", class: "link-button", text: "Retry", onclick: () => sendLocal(local) }),
        el("button", {
          type: "button",
          class: "link-button",
          text: "Discard",
          onclick: () => {
            state.local = state.local.filter((l) => l !== local);
            renderTimeline();
          },
        }),
      )
    : el("div", { class: "msg-status pending", text: "Sending…" });
  return el(
    "li",
    { class: "msg msg-agent msg-out msg-local", "data-status": local.error ? "failed" : "local" },
    el("div", { class: "msg-meta" }, el("span", { class: "author", text: "You" }), el("time", { text: clock(local.at) })),
    el("div", { class: "bubble" }, el("span", { class: "text", text: local.text })),
    status,
  );
}
