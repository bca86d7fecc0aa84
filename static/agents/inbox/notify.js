// Desktop notification and sound for new waiting tickets and for notes that mention
// the agent, switched on per browser (localStorage).

import { $ } from "./dom.js";
import { state } from "./state.js";

const NOTIFY_KEY = "helpdesk.notify";

function notifyEnabled() {
  return localStorage.getItem(NOTIFY_KEY) === "1";
}

let audio = null;

function beep() {
  try {
    audio = audio || new AudioContext();
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.frequency.value = 880;
    gain.gain.setValueAtTime(0.12, audio.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
    osc.connect(gain).connect(audio.destination);
    osc.start();
    osc.stop(audio.currentTime + 0.4);
  } catch {
    // no sound available: the notification is enough
  }
}

const NAME_WAIT_MS = 1000;
let held = null; // a grown waiting count, announced once the new ticket is named (or soon)

export function announce(counts, tickets) {
  // After the list was fetched (a page of it, in its order).
  let more;
  let name = null;
  if (state.queue === "waiting") {
    // Watching the waiting list: a ticket not seen before is new. (The counts come
    // from a parallel request and may run ahead of the list; the list names who.)
    const seen = state.waitingSeen;
    const fresh = seen ? tickets.find((t) => !seen.has(t.id)) : null;
    if (fresh) name = fresh.contact.name;
    more = Boolean(fresh);
  } else {
    more = state.counts !== null && counts.waiting > state.counts.waiting;
  }
  seeWaiting(tickets);
  notify(more, name, counts);
}

export function announcePatched(counts, tickets) {
  // After live events: `tickets` are the ones they named, fetched with `counts`.
  const grew = state.counts !== null && counts.waiting > state.counts.waiting;
  if (state.queue !== "waiting") {
    seeWaiting(tickets);
    notify(grew, null, counts);
    return;
  }
  // The list may not hold every waiting ticket (it comes a page at a time), so an
  // unseen one is not new by itself: the count says whether one is, the events who.
  // They can come in different bursts (the count may run ahead), so a grown count
  // waits a moment for the ticket's name.
  const seen = state.waitingSeen || new Set();
  const fresh = tickets.find((t) => t.status === "waiting" && !seen.has(t.id));
  seeWaiting(tickets);
  if (fresh && (grew || held)) {
    notify(true, fresh.contact.name, counts);
  } else if (grew && !held) {
    held = setTimeout(() => notify(true, null, counts), NAME_WAIT_MS);
  }
}

export function seeWaiting(tickets) {
  if (state.queue !== "waiting") {
    state.waitingSeen = null;
    return;
  }
  const waiting = tickets.filter((t) => t.status === "waiting").map((t) => t.id);
  state.waitingSeen = new Set([...(state.waitingSeen || []), ...waiting]);
}

function notify(more, name, counts) {
  if (!more) return;
  clearTimeout(held); // announced now: nothing more to say for it
  held = null;
  if (!notifyEnabled()) return;
  beep();
  if ("Notification" in window && Notification.permission === "granted" && !document.hasFocus()) {
    const body = name ? `${name} is waiting.` : `${counts.waiting} ticket(s) waiting.`;
    new Notification("New waiting ticket", { body, tag: "helpdesk-waiting" });
  }
}

export function notifyMention(title, body) {
  // A note names this agent (notes.js): the same toggle, sound and desktop notification.
  if (!notifyEnabled()) return;
  beep();
  if ("Notification" in window && Notification.permission === "granted" && !document.hasFocus()) {
    new Notification(title, { body, tag: "helpdesk-mention" });
  }
}

export function notifyAssigned(name) {
  // Issue 11: a ticket was assigned to this agent automatically.
  if (!notifyEnabled()) return;
  beep();
  if ("Notification" in window && Notification.permission === "granted" && !document.hasFocus()) {
    new Notification("A ticket was assigned to you", { body: `${name} is yours now.`, tag: "helpdesk-assigned" });
  }
}

export function renderNotifyToggle() {
  const on = notifyEnabled();
  $("notify-text").textContent = on ? "Notifications: on" : "Notifications: off";
  $("notify-toggle").setAttribute("aria-pressed", on ? "true" : "false");
}

export async function toggleNotify() {
  if (notifyEnabled()) {
    localStorage.removeItem(NOTIFY_KEY);
  } else {
    localStorage.setItem(NOTIFY_KEY, "1");
    audio = audio || new AudioContext(); // created in a click, so it may play later
    if ("Notification" in window && Notification.permission === "default") {
      await Notification.requestPermission();
    }
    beep();
  }
  renderNotifyToggle();
}
