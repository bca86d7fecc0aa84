// Durations, clock times and the words the inbox uses for states and authors.

import { ME } from "./state.js";

// The server's clock minus this browser's, from X-Server-Time on API answers: waiting
// times and countdowns follow the helpdesk's time (in development, the emulator's moved
// clock), not the computer's.
let serverOffset = 0;

export function noteServerTime(header) {
  const at = Number(header);
  if (header && Number.isFinite(at)) serverOffset = at - Date.now();
}

export function serverNow() {
  return Date.now() + serverOffset;
}

export const DAY_MS = 24 * 60 * 60000;

// When a window of `length` ms closes (ISO time from the API), at most `length` from now:
// a countdown never shows more than the window's length.
export function windowCloses(iso, now, length) {
  return Math.min(Date.parse(iso), now + length);
}

export function duration(ms) {
  const minutes = Math.max(0, Math.floor(ms / 60000));
  if (minutes < 1) return "less than a minute";
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

// The timeline's one time format: the time of day, in the agent's time zone. The day is
// said once, by a separator where it changes (`dayLabel`); the full date and time is the
// <time> element's title.
export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export function fullTime(ms) {
  return new Date(ms).toLocaleString([], { dateStyle: "full", timeStyle: "short" });
}

// A moment outside the timeline (the header, a closed ticket's summary): its time of
// day when it is today, else the day too.
export function when(ms, now = Date.now()) {
  return dayKey(ms) === dayKey(now) ? clock(ms) : `${dayLabel(ms, now)}, ${clock(ms)}`;
}

// The agent's calendar day of a moment: items with the same key are on the same day.
export function dayKey(ms) {
  return new Date(ms).toDateString();
}

export function dayLabel(ms, now = Date.now()) {
  const day = new Date(ms);
  const today = new Date(now);
  if (dayKey(ms) === dayKey(now)) return "Today";
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(ms) === dayKey(yesterday.getTime())) return "Yesterday";
  const options = { weekday: "long", day: "numeric", month: "long" };
  if (day.getFullYear() !== today.getFullYear()) options.year = "numeric";
  return day.toLocaleDateString([], options);
}

export function authorLabel(message, ticket) {
  switch (message.author_kind) {
    case "customer":
      return ticket.contact.name;
    case "bot":
      // Echoes of any app but the Page Inbox are stored as the bot's; while another app
      // owned the thread, its own messages are that app's.
      if (message.segment && message.segment.kind === "other_app" && message.app_id && message.app_id === message.segment.app_id) {
        return `App ${message.app_id}`;
      }
      return "Bot";
    case "page_inbox":
      return "Page Inbox";
    case "agent": {
      if (!message.author) return "Helpdesk";
      return message.author.id === ME.id ? `${message.author.name} (you)` : message.author.name;
    }
    case "system":
      // The helpdesk's own automated message to the customer (the hand-back notice).
      return message.direction === "out" ? "Automatic message" : "System";
    default:
      return "System";
  }
}

export function previewText(last) {
  if (!last) return "No messages yet";
  const who = { customer: "", bot: "Bot: ", page_inbox: "Page Inbox: ", agent: "Agent: " }[last.author_kind] ?? "";
  const body = last.text || (last.attachment_types.length ? `[${last.attachment_types.join(", ")}]` : "");
  return who + body;
}

export const STATUS_TEXT = {
  pending: "Sending…",
  sending: "Sending…",
  confirming: "Confirming…",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
};
