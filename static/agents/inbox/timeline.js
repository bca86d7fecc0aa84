// The conversation's timeline, in event-time order: messages, ticket events, and around
// the ticket's own, folded, what happened while someone else had the conversation (the
// bot, the Page Inbox, another app, nobody, an earlier ticket: the server says who, in
// each item's `segment`); a separator where the day changes; then the replies still on
// their way. Above them, while older pages exist, the way to load them (scrolling to
// the top does the same).
//
// Every thread-control change (the ticket's `transitions`) is a small centred line with
// its cause; where a system message already says it ("Control passed to the helpdesk."),
// that line gets the cause instead of a second line saying the same.

import { sentFileNode } from "./attachments.js";
import { acceptedAlready, localNode, retryMessage } from "./composer.js";
import { loadOlder } from "./conversation.js";
import { $, el, safeUrl } from "./dom.js";
import { noteNode } from "./notes.js";
import { authorLabel, clock, dayKey, dayLabel, fullTime, STATUS_TEXT } from "./format.js";
import { ME, state } from "./state.js";

const EVENT_TEXT = {
  claimed: (e) => `${actorName(e)} claimed the ticket${e.detail ? ` (${e.detail})` : ""}`,
  transferred: (e) => `${actorName(e)} transferred the ticket ${e.detail}`,
  closed: (e) =>
    `${e.actor ? `${actorName(e)} closed` : "The helpdesk closed"} the ticket${e.detail ? ` (${e.detail})` : ""}`,
  reopened: () => "The ticket was reopened",
  // Issue 11: routing and office hours.
  assigned: (e) => `Assigned automatically${e.detail ? `: ${e.detail.replace(/^auto-assigned: /, "")}` : ""}`,
  unavailable: (e) => {
    // "…; not told: why" (agents/services/routing.py, UNTOLD): nothing was sent.
    const [why, untold] = e.detail.split("; not told: ");
    return untold === undefined
      ? `Nobody could answer yet (${why}): the customer was told`
      : `Nobody could answer yet (${why}). The customer was not told: ${untold}`;
  },
  return_failed: (e) => `Handing the conversation back failed: ${e.detail}`,
  tagged: (e) => `${actorName(e)} tagged the ticket “${e.detail}”`,
  untagged: (e) => `${actorName(e)} removed the tag “${e.detail}”`,
};

// Who caused a thread-control change, in words.
const CAUSE_TEXT = {
  webhook: "Messenger",
  api: "our call",
  agent: "agent",
  reconcile: "checked with Messenger",
};

// A system message this close to a change (ms) says the same thing: they are written in
// one transaction, stamped with the handover's time (`at`). Where the server does not
// say `at`, only when the change was recorded is known: a webhook's processing comes
// later than Meta's stamp, by up to a minute on a busy queue.
const SAME_CHANGE_MS = 2000;
const SAME_CHANGE_RECORDED_MS = 60000;

function transitionAt(transition) {
  return transition.at || Date.parse(transition.created_at);
}

function sameChangeMs(transition) {
  return transition.at ? SAME_CHANGE_MS : SAME_CHANGE_RECORDED_MS;
}

// Only these changes come with a system message: control to us, back to the bot or to
// nobody, taken by another app. Asking, handing back and extending have none.
function toldBySystem(transition) {
  return transition.from_state !== transition.to_state && ["agent", "bot", "idle", "taken"].includes(transition.to_state);
}

function causeText(transition) {
  return CAUSE_TEXT[transition.cause] || transition.cause;
}

function transitionText(transition) {
  const what = transition.detail || `thread control: ${transition.from_state} → ${transition.to_state}`;
  // A sentence; one that starts with an API's name (take_thread_control) keeps its case.
  const first = what.split(" ")[0];
  return `${/^[a-z]+$/.test(first) ? first.charAt(0).toUpperCase() + what.slice(1) : what}.`;
}

function causeNode(transition) {
  return el("span", { class: "cause", text: `(${causeText(transition)})` });
}

// Each change either stands alone or is told by the system message that says it: the
// closest pairs first, each message telling one change at most.
function placeTransitions(transitions, messages, since) {
  const system = messages.filter((m) => m.author_kind === "system" && m.direction !== "out");
  const pairs = [];
  const shown = transitions.filter((t) => transitionAt(t) >= since);
  for (const transition of shown.filter(toldBySystem)) {
    const at = transitionAt(transition);
    for (const message of system) {
      const off = Math.abs(message.timestamp - at);
      if (off <= sameChangeMs(transition)) pairs.push({ off, transition, message });
    }
  }
  pairs.sort((a, b) => a.off - b.off);
  const said = new Map(); // message id → the change it tells
  const told = new Set();
  for (const { transition, message } of pairs) {
    if (said.has(message.id) || told.has(transition)) continue;
    said.set(message.id, transition);
    told.add(transition);
  }
  // The changes' own order is the truth: one standing alone goes no later than the next
  // change is shown (a hand-back is stamped with the message that carried it, which was
  // written before the ticket's close was recorded).
  const shownAt = new Map();
  const toldAt = new Map([...said].map(([id, transition]) => [transition, system.find((m) => m.id === id).timestamp]));
  let next = Infinity;
  for (const transition of [...shown].reverse()) {
    const at = toldAt.has(transition) ? toldAt.get(transition) : Math.min(transitionAt(transition), next);
    shownAt.set(transition, at);
    next = at;
  }
  const alone = shown.filter((t) => !told.has(t)).map((transition) => ({ at: shownAt.get(transition), transition }));
  return { said, alone };
}

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
  const { said, alone } = placeTransitions(ticket.transitions || [], state.messages, since);
  for (const message of state.messages) {
    items.push({ at: message.timestamp, message, context: message.context, segment: message.segment });
  }
  for (const event of ticket.events) {
    const at = event.timestamp;
    if (EVENT_TEXT[event.kind] && at >= since) items.push({ at, event, context: event.context, segment: event.segment });
  }
  for (const { at, transition } of alone) items.push({ at, transition, context: false, segment: null });
  // Private notes (notes.js) by their time, never folded: like events, from the oldest
  // loaded message on.
  for (const note of state.notes) if (note.timestamp >= since) items.push({ at: note.timestamp, note, context: false, segment: null });
  // On a tie (a reply that claims the ticket is stamped with its claim), the ticket
  // event or the control change goes first: it happened before the message it came with.
  items.sort((a, b) => a.at - b.at || (a.message ? 1 : 0) - (b.message ? 1 : 0));
  joinContext(items);

  const nodes = [];
  let group = null;
  let day = null;
  for (const item of items) {
    const joins = Boolean(item.context && group && group.key === item.segment.key);
    if (dayKey(item.at) !== day) {
      // A new day inside a folded group is said inside it; else where the item goes.
      day = dayKey(item.at);
      (joins ? group.nodes : nodes).push(dayNode(item.at));
    }
    const node = item.message
      ? messageNode(item.message, ticket, said.get(item.message.id))
      : item.event
        ? eventNode(item.event)
        : item.note
          ? noteNode(item.note, ticket)
          : transitionNode(item.transition);
    if (!item.context) {
      group = null;
      nodes.push(node);
      continue;
    }
    if (!joins) {
      // The first group may go on in a page not loaded yet.
      const cut = Boolean(state.olderMore) && !nodes.some((n) => !(n instanceof Node) || !n.classList.contains("day-separator"));
      group = { key: item.segment.key, segment: item.segment, ids: [], count: 0, cut, nodes: [] };
      nodes.push(group);
    }
    group.ids.push(itemId(item));
    if (item.message) group.count += 1;
    group.nodes.push(node);
  }
  const rendered = nodes.map((node) => (node instanceof Node ? node : contextNode(node)));
  const locals = state.local.filter((local) => local.error || !acceptedAlready(local)); // else the server's copy is shown
  if (locals.length && day !== dayKey(Date.now())) rendered.push(dayNode(Date.now()));
  for (const local of locals) rendered.push(localNode(local));
  if (state.olderMore) rendered.unshift(olderNode());
  list.replaceChildren(...rendered);
  if (scroll || (nearBottom && !keep)) list.scrollTop = list.scrollHeight;
  else if (keep) list.scrollTop = list.scrollHeight - fromBottom;
}

function itemId(item) {
  if (item.message) return item.message.id;
  if (item.note) return `note:${item.note.id}`;
  if (item.event) return `event:${item.event.kind}:${item.event.created_at}`;
  return `transition:${item.transition.created_at}:${item.transition.to_state}`;
}

function joinContext(items) {
  // A control change between two items of one folded stretch (the bot's, say) goes
  // into it; one where the stretch changes stands between them.
  for (const [index, item] of items.entries()) {
    if (!item.transition) continue;
    const before = items.slice(0, index).reverse().find((other) => !other.transition);
    const after = items.slice(index + 1).find((other) => !other.transition);
    if (before && after && before.context && after.context && before.segment.key === after.segment.key) {
      item.context = true;
      item.segment = before.segment;
    }
  }
}

function dayNode(ms) {
  const label = dayLabel(ms);
  return el("li", { class: "day-separator", role: "separator", "aria-label": label }, el("span", { text: label }));
}

function timeNode(ms) {
  return el("time", { datetime: new Date(ms).toISOString(), title: fullTime(ms), text: clock(ms) });
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
  // remembered by every item it holds, not by its first.
  const count = group.count ? ` · ${group.count} message${group.count === 1 ? "" : "s"}` : "";
  const details = el(
    "details",
    {
      class: "context",
      "data-kind": group.segment.kind,
      open: group.ids.some((id) => state.openContext.has(id)),
    },
    el("summary", { text: `${group.segment.label}${count}${group.cut ? " (more above)" : ""}` }),
    el("ol", { class: "context-messages" }, ...group.nodes),
  );
  const remember = (open) => {
    for (const id of group.ids) {
      if (open) state.openContext.add(id);
      else state.openContext.delete(id);
    }
  };
  // Remembered at the click too: the toggle event comes a task later, and a live redraw
  // in between drew the group folded again (CI's XSS test saw its click undone).
  details.querySelector("summary").addEventListener("click", () => remember(!details.open));
  details.addEventListener("toggle", () => remember(details.open));
  return el("li", { class: "context-group" }, details);
}

function eventNode(event) {
  return el(
    "li",
    { class: "msg msg-system msg-event" },
    el("span", { class: "system-text", text: EVENT_TEXT[event.kind](event) }),
    timeNode(event.timestamp),
  );
}

function transitionNode(transition) {
  const at = transitionAt(transition);
  return el(
    "li",
    { class: "msg msg-system msg-transition", "data-cause": transition.cause, "data-to": transition.to_state },
    el("span", { class: "system-text", text: transitionText(transition) }),
    causeNode(transition),
    timeNode(at),
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

function messageNode(message, ticket, transition) {
  if (message.author_kind === "system" && message.direction !== "out") {
    // The line of a control change, when it is one, with who caused it.
    return el(
      "li",
      {
        class: `msg msg-system${transition ? " msg-transition" : ""}`,
        "data-message-id": String(message.id),
        "data-cause": transition ? transition.cause : undefined,
        "data-to": transition ? transition.to_state : undefined,
      },
      el("span", { class: "system-text", text: message.text }),
      transition ? causeNode(transition) : null,
      timeNode(message.timestamp),
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
  if (message.files && message.files.length) {
    for (const file of message.files) body.append(sentFileNode(file)); // a file an agent sent
  } else {
    for (const attachment of message.attachments || []) {
      const node = attachmentNode(attachment);
      if (node) body.append(node);
    }
  }
  if (message.quick_replies && message.quick_replies.length) {
    // The buttons sent under it (the rating question's 1 to 5), as the customer saw them.
    body.append(el("span", { class: "quick-replies-sent", "aria-label": "Quick replies" }, ...message.quick_replies.map((r) => el("span", { class: "chip", text: r.title }))));
  }

  const failed = message.status === "failed";
  // The helpdesk's automatic message to the customer (the hand-back notice): a bubble
  // of ours, told apart from an agent's.
  const automatic = message.author_kind === "system";
  const kind = automatic ? "automatic" : message.author_kind;
  const node = el(
    "li",
    {
      class: `msg msg-${kind} msg-${message.direction}${failed ? " msg-failed" : ""}`,
      "data-message-id": String(message.id),
      "data-status": message.status,
      "data-segment": message.segment.kind,
    },
    el(
      "div",
      { class: "msg-meta" },
      el("span", { class: "author", text: authorLabel(message, ticket) }),
      timeNode(message.timestamp),
    ),
    // A failed message looks failed: a warning sign by its bubble, as Messenger shows it.
    failed
      ? el("div", { class: "bubble-row" }, el("span", { class: "failure-icon", role: "img", "aria-label": "Not sent", title: "Not sent" }), body)
      : body,
  );
  // Ours (an agent's, or the helpdesk's automatic notice): how its send went.
  if (message.author_kind === "agent" || automatic) node.append(statusNode(message, { retry: !automatic }));
  return node;
}

function statusNode(message, { retry = true } = {}) {
  if (message.status === "failed") {
    // The server's words for the agent first (agents/send_errors.py), Meta's code apart.
    return el(
      "div",
      { class: "msg-status failed" },
      el("span", { class: "failure-text", text: message.error || "Not sent." }),
      message.error_detail ? el("span", { class: "failure-detail", text: message.error_detail }) : null,
      retry
        ? el("button", {
            type: "button",
            class: "link-button",
            text: "Retry",
            onclick: () => retryMessage(message.id),
          })
        : null,
    );
  }
  // A retry on its way, or a send waiting for Meta's echo: the reason says which.
  const explained = ["pending", "confirming"].includes(message.status) && message.error;
  return el("div", {
    class: `msg-status ${message.status}`,
    text: explained ? message.error : STATUS_TEXT[message.status] || message.status,
  });
}
