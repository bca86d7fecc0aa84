// The close, transfer and profile dialogs. Each is a <form method="dialog">: Enter in a field
// submits it with its first submit button (the action, never Cancel, which is a plain
// button), and Esc cancels.

import { api } from "./api.js";
import { action, showNotice } from "./conversation.js";
import { renderCsatCloseNote } from "./csat.js";
import { $, el } from "./dom.js";
import { loadPresence, presenceBadge } from "./routing.js";
import { ME, state } from "./state.js";

export function wireDialogs() {
  for (const button of document.querySelectorAll("dialog [data-dismiss]")) {
    button.addEventListener("click", () => button.closest("dialog").close("cancel"));
  }
  // A dialog opened from the page's body (a shortcut) leaves the focus on its field when
  // it closes, until Chromium's next rendering moves it: the keys would still be the
  // field's. The focus leaves with the dialog.
  for (const dialog of document.querySelectorAll("dialog")) {
    dialog.addEventListener("close", () => {
      if (dialog.contains(document.activeElement)) document.activeElement.blur();
    });
  }
  $("close-dialog").addEventListener("close", () => {
    if ($("close-dialog").returnValue === "close") closeTicket();
  });
  $("transfer-form").addEventListener("submit", onTransferSubmit);
  $("profile-form").addEventListener("submit", onProfileSubmit);
  $("transfer-targets").addEventListener("change", () => {
    const chosen = $("transfer-targets").querySelector("input:checked");
    transfer.chosen = chosen ? transfer.targets.find((a) => a.id === Number(chosen.value)) : null;
    renderTransfer();
  });
  $("transfer-back").addEventListener("click", () => {
    transfer.step = "choose";
    renderTransfer();
    $("transfer-targets").querySelector("input:checked")?.focus();
  });
}

// --- close ------------------------------------------------------------------------------

export function openCloseDialog() {
  const ticket = state.ticket;
  const owned = ticket.control_state === "agent";
  $("closing-message").disabled = !owned;
  $("closing-message").value = "";
  $("closing-outcome").value = "resolved"; // each ticket's own, not the last one's
  $("close-explain").textContent = owned
    ? "An optional closing message is sent first; then the conversation goes back to the bot."
    : `No closing message can be sent: ${ticket.lock_reason || "the helpdesk does not own the conversation."}`;
  renderCsatCloseNote(ticket); // whether a rating question follows (csat.js)
  // The last closing's "close" stays until set: Esc must not close this one.
  $("close-dialog").returnValue = "";
  $("close-dialog").showModal();
}

function closeTicket() {
  const ticket = state.ticket;
  const closing = $("closing-message").disabled ? "" : $("closing-message").value;
  const outcome = $("closing-outcome").value || "resolved";
  action(() => api("POST", `/tickets/${ticket.id}/close`, { closing_message: closing, outcome }));
}

// --- transfer ---------------------------------------------------------------------------

// The dialog's state: whom the server says the ticket may go to (null while loading),
// who is chosen, and the step (choose, then confirm).
let transfer = { ticketId: null, targets: null, chosen: null, step: "choose", error: "" };

function nameOf(agent) {
  return agent.id === ME.id ? `${agent.name} (you)` : agent.name;
}

export async function openTransferDialog() {
  const ticketId = state.ticket.id;
  transfer = { ticketId, targets: null, chosen: null, step: "choose", error: "" };
  renderTransfer();
  $("transfer-dialog").showModal();
  try {
    const [targets] = await Promise.all([
      api("GET", `/tickets/${ticketId}/transfer-targets`),
      loadPresence().catch(() => {}), // presence next to the names, when it loads
    ]);
    if (transfer.ticketId !== ticketId) return;
    transfer.targets = targets;
  } catch (error) {
    if (transfer.ticketId !== ticketId) return;
    transfer.targets = [];
    transfer.error = `The agents could not be loaded: ${error.message}`;
  }
  renderTransfer();
  $("transfer-targets").querySelector("input")?.focus();
}

function renderTransfer() {
  const { targets, chosen, step, error } = transfer;
  $("transfer-choose").hidden = step !== "choose";
  $("transfer-confirm").hidden = step !== "confirm";
  $("transfer-loading").hidden = targets !== null;
  $("transfer-empty").hidden = !targets || targets.length > 0 || Boolean(error);
  $("transfer-error").hidden = !error;
  $("transfer-error").textContent = error;
  const fieldset = $("transfer-targets");
  const shown = [...fieldset.querySelectorAll("input")].map((input) => Number(input.value));
  const ids = (targets || []).map((a) => a.id);
  if (shown.join() !== ids.join()) {
    fieldset.replaceChildren(
      fieldset.querySelector("legend"),
      ...(targets || []).map((agent) =>
        el(
          "label",
          { class: "choice" },
          el("input", { type: "radio", name: "transfer-target", value: String(agent.id) }),
          el("span", { text: nameOf(agent) }),
          presenceBadge(agent.id),
        ),
      ),
    );
  }
  $("transfer-next").disabled = !chosen;
  if (chosen) {
    $("transfer-question").textContent = `Transfer to ${chosen.name}?`;
    $("transfer-consequence").textContent =
      chosen.id === ME.id
        ? "The ticket becomes yours."
        : `${chosen.name} becomes the ticket's assignee and sees it in their Mine queue; only they can reply to it then.`;
  }
}

async function onTransferSubmit(event) {
  event.preventDefault(); // the dialog stays open until the transfer is done
  const { chosen, step, ticketId } = transfer;
  if (!chosen) return;
  if (step === "choose") {
    transfer.step = "confirm";
    renderTransfer();
    $("transfer-confirm-btn").focus();
    return;
  }
  $("transfer-confirm-btn").disabled = true;
  let refusal = "";
  const ok = await action(async () => {
    try {
      await api("POST", `/tickets/${ticketId}/transfer`, { agent_id: chosen.id });
    } catch (error) {
      refusal = error.message;
      throw error;
    }
  });
  $("transfer-confirm-btn").disabled = false;
  if (transfer.ticketId !== ticketId) return;
  if (ok) {
    $("transfer-dialog").close("done");
    showNotice(chosen.id === ME.id ? "Transferred to you." : `Transferred to ${chosen.name}.`);
    return;
  }
  // Refused (someone else was quicker, the agent left…): say why, choose again.
  transfer.step = "choose";
  transfer.error = refusal ? `Not transferred: ${refusal}` : "";
  renderTransfer();
}

// --- your name for customers ------------------------------------------------------------

// Loaded each time the dialog opens: another tab (or an admin) may have changed it.
let profileLoading = 0;

export async function openProfileDialog() {
  const load = ++profileLoading;
  const name = $("profile-name");
  const picture = $("profile-picture");
  showProfileError("");
  name.value = "";
  picture.value = "";
  name.disabled = picture.disabled = $("profile-save").disabled = true;
  $("profile-dialog").showModal();
  try {
    const me = await api("GET", "/me");
    if (load !== profileLoading) return;
    name.value = me.public_name || "";
    picture.value = me.picture_url || "";
  } catch (error) {
    if (load !== profileLoading) return;
    showProfileError(`Your profile could not be loaded: ${error.message}`);
    return;
  }
  name.disabled = picture.disabled = $("profile-save").disabled = false;
  name.focus();
}

function showProfileError(text) {
  $("profile-error").textContent = text;
  $("profile-error").hidden = !text;
}

async function onProfileSubmit(event) {
  event.preventDefault(); // open until saved; Esc or Cancel closes it unchanged
  const save = $("profile-save");
  if (save.disabled) return;
  save.disabled = true;
  showProfileError("");
  try {
    await api("PUT", "/me", {
      public_name: $("profile-name").value.trim(),
      picture_url: $("profile-picture").value.trim(),
    });
  } catch (error) {
    showProfileError(`Not saved: ${error.message}`);
    save.disabled = false;
    return;
  }
  save.disabled = false;
  $("profile-dialog").close("saved");
}
