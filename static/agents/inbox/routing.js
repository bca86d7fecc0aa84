// Presence and routing (issue 11): the agent's Online/Away toggle in the top bar, other
// agents' presence (next to their names in the transfer dialog), and what the socket
// says about them: `presence.changed` (an agent's id: the presence list is fetched
// again) and `ticket.assigned` (a ticket was given to this agent: a notification, if
// they switched notifications on; the list itself follows `ticket.updated`).
//
// Names come from the API and go in with textContent only.

import { api } from "./api.js";
import { $, el } from "./dom.js";
import { notifyAssigned } from "./notify.js";

const WORDS = { online: "Online", away: "Away", offline: "Offline" };
const TITLES = {
  online: "Online: new tickets may be assigned to you. Click to be away.",
  away: "Away: no ticket is assigned to you automatically (you can still claim). Click to be online.",
  offline: "Offline: the live connection is down; tickets are not assigned to you meanwhile.",
};

let mine = { status: "online", presence: "online" };
const byId = new Map(); // agent id -> "online" | "away" | "offline"
let reload = null;

export function wirePresence() {
  $("presence-toggle").addEventListener("click", togglePresence);
  loadMine().catch(() => {});
}

async function loadMine() {
  mine = await api("GET", "/me/presence");
  renderMine();
}

function renderMine() {
  const shown = mine.presence === "offline" ? "offline" : mine.status;
  const button = $("presence-toggle");
  button.dataset.presence = shown;
  button.title = TITLES[shown];
  button.setAttribute("aria-label", `Your presence: ${WORDS[shown]}. ${TITLES[shown]}`);
  $("presence-text").textContent = WORDS[shown];
}

async function togglePresence() {
  const button = $("presence-toggle");
  const next = mine.status === "away" ? "online" : "away";
  button.disabled = true;
  try {
    mine = await api("PUT", "/me/presence", { status: next });
  } catch (error) {
    button.title = `Not changed: ${error.message}`;
  } finally {
    button.disabled = false;
  }
  renderMine();
}

// --- others' presence ---------------------------------------------------------------------

export async function loadPresence() {
  const rows = await api("GET", "/presence");
  byId.clear();
  for (const row of rows) byId.set(row.id, row.presence);
  for (const node of document.querySelectorAll("[data-presence-for]")) paint(node);
}

export function presenceBadge(agentId) {
  // A dot and a word next to an agent's name; filled from the last presence list.
  const node = el("span", { class: "presence-badge", "data-presence-for": String(agentId) },
    el("span", { class: "visually-hidden", text: " – " }), // "Bo Jensen – Away", read aloud
    el("span", { class: "presence-dot", "aria-hidden": "true" }),
    el("span", { class: "presence-word" }));
  paint(node);
  return node;
}

function paint(node) {
  const value = byId.get(Number(node.dataset.presenceFor));
  node.hidden = !value;
  node.dataset.presence = value || "";
  node.querySelector(".presence-word").textContent = value ? WORDS[value] : "";
}

function presenceChanged(event) {
  if (event.user_id === Number($("app").dataset.userId)) loadMine().catch(() => {});
  if (!document.querySelector("[data-presence-for]")) return; // nobody shown: nothing to do
  clearTimeout(reload);
  reload = setTimeout(() => loadPresence().catch(() => {}), 150);
}

// --- socket events ----------------------------------------------------------------------

export function socketOpened(socket) {
  socket.send(JSON.stringify({ type: "presence.follow" }));
  loadMine().catch(() => {});
}

export function socketClosed() {
  mine = { ...mine, presence: "offline" };
  renderMine();
}

export function routingEvent(event) {
  // True when the event was this module's (the caller then ignores it).
  if (event.event === "presence.changed") {
    presenceChanged(event);
    return true;
  }
  if (event.event === "ticket.assigned") {
    api("GET", `/tickets/${event.ticket_id}`)
      .then((ticket) => notifyAssigned(ticket.contact.name))
      .catch(() => {});
    return true;
  }
  return false;
}
