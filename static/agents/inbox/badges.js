// The words the inbox uses for where a ticket stands, defined once: a list row and the
// conversation's header show the same badge for the same state.
//
//   status   waiting (nobody has claimed it) · with you · with Ana Lima · closed
//   control  only when the thread is not where the status implies (an unclosed ticket's
//            thread is the helpdesk's): control requested, returning to the bot, taken
//            back, with the bot, nobody has it; the full label is its title

import { ME } from "./state.js";

export function statusBadge(ticket) {
  if (ticket.status === "closed") return { text: "closed", tone: "muted", state: "closed" };
  if (ticket.status === "waiting" || !ticket.assignee) return { text: "waiting", tone: "warn", state: "waiting" };
  if (ticket.assignee.id === ME.id) return { text: "with you", tone: "ok", state: "mine" };
  return { text: `with ${ticket.assignee.name}`, tone: "info", state: "assigned" };
}

const CONTROL = {
  requested: ["control requested", "warn"],
  returning: ["returning to the bot", "info"],
  taken: ["taken back", "bad"],
  bot: ["with the bot", "bad"],
  idle: ["nobody has it", "bad"],
  agent: ["with the helpdesk", "ok"],
};

export function controlBadge(ticket) {
  const state = ticket.control_state;
  // A closed ticket's thread is someone else's: only a request for it again is news.
  const expected = ticket.status === "closed" ? state !== "requested" : state === "agent";
  if (expected) return null;
  const [text, tone] = CONTROL[state] || [ticket.control_state_label, "muted"];
  return { text, tone, state, title: `Thread: ${ticket.control_state_label}` };
}

export function fillBadge(node, badge, kind) {
  // `kind`: "status" or "control", for styles and tests.
  node.hidden = !badge;
  if (!badge) return node;
  node.className = `badge ${kind}-badge badge-${badge.tone}`;
  node.textContent = badge.text;
  node.title = badge.title || badge.text;
  node.dataset.state = badge.state;
  return node;
}
