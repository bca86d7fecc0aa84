// The queues, their counts and the ticket list.

import { api } from "./api.js";
import { renderWindows, selectTicket } from "./conversation.js";
import { $, avatar, el } from "./dom.js";
import { duration, previewText, STATE_CLASS, STATE_SHORT } from "./format.js";
import { announce } from "./notify.js";
import { ME, state } from "./state.js";

export async function loadList() {
  const params = new URLSearchParams({ queue: state.queue });
  if (state.queue === "closed") params.set("limit", "100");
  const [tickets, counts] = await Promise.all([api("GET", `/tickets?${params}`), api("GET", "/queues")]);
  state.tickets = tickets;
  announce(counts, tickets);
  state.counts = counts;
  renderList();
}

export function renderList() {
  for (const node of document.querySelectorAll("[data-count]")) {
    node.textContent = state.counts ? String(state.counts[node.dataset.count]) : "–";
  }
  for (const button of document.querySelectorAll(".queue")) {
    button.setAttribute("aria-current", button.dataset.queue === state.queue ? "page" : "false");
  }
  document.title = state.counts && state.counts.waiting ? `(${state.counts.waiting}) Inbox · Helpdesk` : "Inbox · Helpdesk";
  const list = $("ticket-list");
  list.replaceChildren(...state.tickets.map(ticketRow));
  $("ticket-list-empty").hidden = state.tickets.length > 0;
  refreshTimes();
}

function ticketRow(ticket) {
  const assignee = ticket.assignee
    ? ticket.assignee.id === ME.id
      ? "you"
      : ticket.assignee.name
    : "unassigned";
  const row = el(
    "li",
    {
      class: `ticket-row${ticket.id === state.ticketId ? " selected" : ""}${ticket.flagged ? " flagged" : ""}`,
      "data-ticket-id": String(ticket.id),
    },
    el(
      "a",
      {
        href: `/tickets/${ticket.id}/?queue=${state.queue}`,
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
          el("span", { class: "ticket-page", text: ticket.page_name }),
          el("span", {
            class: `badge badge-${STATE_CLASS[ticket.control_state] || "muted"}`,
            text: STATE_SHORT[ticket.control_state] || ticket.control_state_label,
            title: ticket.control_state_label,
            "data-state": ticket.control_state,
          }),
          el("span", { class: "ticket-assignee", text: assignee }),
        ),
      ),
    ),
  );
  return row;
}

function waitSince(ticket) {
  if (ticket.status === "closed") return ticket.closed_at ? `closed:${Date.parse(ticket.closed_at)}` : "";
  return ticket.waiting_since ? `waiting:${Date.parse(ticket.waiting_since)}` : "";
}

export function refreshTimes() {
  const now = Date.now();
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
