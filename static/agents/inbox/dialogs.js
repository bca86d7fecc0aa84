// The close dialog.

import { api } from "./api.js";
import { action } from "./conversation.js";
import { $ } from "./dom.js";
import { state } from "./state.js";

export function openCloseDialog() {
  const ticket = state.ticket;
  const owned = ticket.control_state === "agent";
  $("closing-message").disabled = !owned;
  $("closing-message").value = "";
  $("close-explain").textContent = owned
    ? "An optional closing message is sent first; then the conversation goes back to the bot."
    : `No closing message can be sent: ${ticket.lock_reason || "the helpdesk does not own the conversation."}`;
  $("close-dialog").showModal();
}

export function closeTicket() {
  const ticket = state.ticket;
  const closing = $("closing-message").disabled ? "" : $("closing-message").value;
  const outcome = $("closing-outcome").value || "resolved";
  action(() => api("POST", `/tickets/${ticket.id}/close`, { closing_message: closing, outcome }));
}
