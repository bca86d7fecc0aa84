// Durations, clock times and the words the inbox uses for states and authors.

import { ME } from "./state.js";

export function duration(ms) {
  const minutes = Math.max(0, Math.floor(ms / 60000));
  if (minutes < 1) return "less than a minute";
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

export function clock(ms) {
  const date = new Date(ms);
  const sameDay = date.toDateString() === new Date().toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return sameDay ? time : `${date.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
}

export function authorLabel(message, ticket) {
  switch (message.author_kind) {
    case "customer":
      return ticket.contact.name;
    case "bot":
      return "Bot";
    case "page_inbox":
      return "Page Inbox";
    case "agent": {
      if (!message.author) return "Helpdesk";
      return message.author.id === ME.id ? `${message.author.name} (you)` : message.author.name;
    }
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
