// The conversation's timeline: messages, ticket events and the bot conversation
// around the ticket (folded), then the replies still on their way; above them, while
// older pages exist, the way to load them (scrolling to the top does the same).

import { acceptedAlready, localNode, retryMessage } from "./composer.js";
import { loadOlder } from "./conversation.js";
import { $, el, safeUrl } from "./dom.js";
import { authorLabel, clock, STATUS_TEXT } from "./format.js";
import { ME, state } from "./state.js";

const EVENT_TEXT = {
  claimed: (e) => `${actorName(e)} claimed the ticket${e.detail ? ` (${e.detail})` : ""}`,
  transferred: (e) => `${actorName(e)} transferred the ticket ${e.detail}`,
  closed: (e) => `${actorName(e)} closed the ticket${e.detail ? ` (${e.detail})` : ""}`,
  reopened: () => "The ticket was reopened",
  return_failed: (e) => `Handing the conversation back failed: ${e.detail}`,
};

function actorName(event) {
  if (!event.actor) return "Someone";
  return event.actor.id === ME.id ? "You" : event.actor.name;
}

export function renderTimeline({ scroll = false, keep = false } = {}) {
  // `scroll`: to the newest message. `keep`: where the agent is reading stays put while
  // older messages come in above it. Otherwise it follows new messages when near the end.
  const list = $("timeline");
  const fromBottom = list.scrollHeight - list.scrollTop;
  const nearBottom = fromBottom - list.clientHeight < 80;
  const ticket = state.ticket;
  // With older pages still to load, only what happened since the oldest loaded message
  // is shown: a ticket event has its place among the messages around it.
  const since = state.olderMore && state.messages.length ? state.messages[0].timestamp : -Infinity;
  const items = [];
  for (const message of state.messages) items.push({ at: message.timestamp, message });
  for (const event of ticket.events) {
    const at = Date.parse(event.created_at);
    if (EVENT_TEXT[event.kind] && at >= since) items.push({ at, event });
  }
  // On a tie (a reply that claims the ticket is stamped with its claim), the ticket
  // event goes first: the claim happened before the message it came with.
  items.sort((a, b) => a.at - b.at || (a.event ? 0 : 1) - (b.event ? 0 : 1));

  const nodes = [];
  let group = null;
  for (const item of items) {
    if (item.message && item.message.context) {
      if (!group) {
        const before = item.message.timestamp < ticket.handover_timestamp;
        // The first group may go on in a page not loaded yet.
        const cut = nodes.length === 0 && Boolean(state.olderMore);
        group = { ids: [], before, cut, nodes: [] };
        nodes.push(group);
      }
      group.ids.push(item.message.id);
      group.nodes.push(messageNode(item.message, ticket));
      continue;
    }
    group = null;
    nodes.push(item.message ? messageNode(item.message, ticket) : eventNode(item.event));
  }
  const rendered = nodes.map((node) => (node instanceof Node ? node : contextNode(node)));
  for (const local of state.local) {
    if (!local.error && acceptedAlready(local)) continue; // the server's copy is shown
    rendered.push(localNode(local));
  }
  if (state.olderMore) rendered.unshift(olderNode());
  list.replaceChildren(...rendered);
  if (scroll || (nearBottom && !keep)) list.scrollTop = list.scrollHeight;
  else if (keep) list.scrollTop = list.scrollHeight - fromBottom;
}

function olderNode() {
  return el(
    "li",
    { class: "timeline-older" },
    el("button", {
      type: "button",
      class: "link-button",
      text: state.olderLoading ? "Loading earlier messages…" : "Earlier messages",
      disabled: state.olderLoading,
      onclick: () => loadOlder(),
    }),
  );
}

function contextNode(group) {
  // Unfolded stays unfolded when the group grows (older pages, new messages): it is
  // remembered by every message it holds, not by its first.
  const details = el(
    "details",
    { class: "context", open: group.ids.some((id) => state.openContext.has(id)) },
    el("summary", {
      text:
        `${group.before ? "Before the handover" : "After this ticket"}: ${group.nodes.length} ` +
        `message${group.nodes.length === 1 ? "" : "s"} with the bot${group.cut ? " (more above)" : ""}`,
    }),
    el("ol", { class: "context-messages" }, ...group.nodes),
  );
  details.addEventListener("toggle", () => {
    for (const id of group.ids) {
      if (details.open) state.openContext.add(id);
      else state.openContext.delete(id);
    }
  });
  return el("li", { class: "context-group" }, details);
}

function eventNode(event) {
  return el(
    "li",
    { class: "msg msg-system msg-event" },
    el("span", { class: "system-text", text: EVENT_TEXT[event.kind](event) }),
    el("time", { text: clock(Date.parse(event.created_at)) }),
  );
}

function attachmentNode(attachment) {
  const url = safeUrl(attachment.url);
  const label = attachment.title || `${attachment.type || "file"} attachment`;
  // A bot's template (buttons) carries its text in the message itself.
  if (!url && attachment.type === "template") return null;
  if (!url) return el("span", { class: "attachment", text: `[${label}]` });
  if (attachment.type === "image") {
    const img = el("img", { class: "attachment-image", alt: attachment.title || "picture", loading: "lazy", referrerPolicy: "no-referrer" });
    img.src = url;
    return el("a", { class: "attachment", href: url, target: "_blank", rel: "noopener noreferrer" }, img);
  }
  return el(
    "a",
    { class: "attachment attachment-file", href: url, target: "_blank", rel: "noopener noreferrer" },
    `Attachment: ${label}`,
  );
}

function messageNode(message, ticket) {
  if (message.author_kind === "system") {
    return el(
      "li",
      { class: "msg msg-system", "data-message-id": String(message.id) },
      el("span", { class: "system-text", text: message.text }),
      el("time", { text: clock(message.timestamp) }),
    );
  }
  const body = el("div", { class: "bubble" });
  if (message.postback_title) {
    body.append(el("span", { class: "postback", text: `Tapped “${message.postback_title}”` }));
  } else if (message.text) {
    body.append(el("span", { class: "text", text: message.text }));
  }
  if (message.quick_reply_payload && !message.postback_title) {
    body.append(el("span", { class: "quick-reply-note", text: "quick reply" }));
  }
  for (const attachment of message.attachments || []) {
    const node = attachmentNode(attachment);
    if (node) body.append(node);
  }

  const node = el(
    "li",
    {
      class: `msg msg-${message.author_kind} msg-${message.direction}`,
      "data-message-id": String(message.id),
      "data-status": message.status,
    },
    el(
      "div",
      { class: "msg-meta" },
      el("span", { class: "author", text: authorLabel(message, ticket) }),
      el("time", { text: clock(message.timestamp) }),
    ),
    body,
  );
  if (message.author_kind === "agent") node.append(statusNode(message));
  return node;
}

function statusNode(message) {
  if (message.status === "failed") {
    return el(
      "div",
      { class: "msg-status failed" },
      el("span", { text: `Failed: ${message.error || "not sent"}` }),
      el("button", {
        type: "button",
        class: "link-button",
        text: "Retry",
        onclick: () => retryMessage(message.id),
      }),
    );
  }
  // A retry on its way, or a send waiting for Meta's echo: the reason says which.
  const explained = ["pending", "confirming"].includes(message.status) && message.error;
  return el("div", {
    class: `msg-status ${message.status}`,
    text: explained ? message.error : STATUS_TEXT[message.status] || message.status,
  });
}
