// CSAT before hand-back (issue 11, point 9): the rating a closed ticket's customer was
// asked for, as the closed panel, the ticket list and the close dialog show it. Every
// text is set with textContent (what the customer answered is a number the server checked,
// but nothing here is ever HTML).

import { $, el } from "./dom.js";
import { clock, when } from "./format.js";

// A small badge for a list row: "Rated 4/5", or "awaiting rating" while the helpdesk
// keeps the conversation for the answer; nothing otherwise.
export function csatBadge(ticket) {
  if (ticket.csat_score) {
    return el("span", {
      class: "badge csat-badge badge-csat",
      "data-score": String(ticket.csat_score),
      title: ticket.csat_text,
      text: `Rated ${ticket.csat_score}/5`,
    });
  }
  if (ticket.csat_status === "waiting") {
    return el("span", { class: "badge csat-badge badge-info", "data-score": "", text: "awaiting rating" });
  }
  return null;
}

// The closed panel's rating line; while the rating is awaited it also says why the
// conversation is not back with the bot yet.
export function renderCsat(ticket) {
  const node = $("closed-csat");
  node.replaceChildren();
  node.hidden = !ticket.csat_status;
  node.dataset.status = ticket.csat_status || "";
  if (!ticket.csat_status) return;
  if (ticket.csat_score) {
    const stars = "★".repeat(ticket.csat_score) + "☆".repeat(5 - ticket.csat_score);
    node.append(
      el("span", { class: "csat-stars", "aria-hidden": "true", text: stars }),
      el("span", { class: "csat-text", text: ticket.csat_text }),
    );
    return;
  }
  if (ticket.csat_status === "waiting") {
    const until = Date.parse(ticket.csat_expires_at);
    node.append(el("span", { class: "csat-text", text: `Waiting for the customer's rating until ${clock(until)}` }));
    node.title = `Until ${when(until)}`;
    if (ticket.control_state === "returning") {
      $("closed-control").textContent =
        "The helpdesk keeps the conversation until the customer rates it or the wait ends; then it goes back to the bot.";
    }
    return;
  }
  node.append(el("span", { class: "csat-text", text: ticket.csat_text }));
}

// The close dialog's line about the rating ("" hides it).
export function renderCsatCloseNote(ticket) {
  const node = $("close-csat");
  node.textContent = ticket.csat_on_close || "";
  node.hidden = !ticket.csat_on_close;
}
