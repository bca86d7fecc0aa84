// The agent inbox: one module, no build step.
//
// State comes from the JSON API (/api/v1/, session + CSRF header); /ws/inbox/ only says
// what changed (small events with ids), and the page refetches it. Everything a
// customer (or the bot, or Meta) wrote is put in the page with textContent or as a DOM
// property, never parsed as HTML.

const app = document.getElementById("app");
const ME = { id: Number(app.dataset.userId), username: app.dataset.username };
const LOGIN_URL = app.dataset.loginUrl;
const API = "/api/v1";
const QUEUES = ["waiting", "mine", "all_open", "closed"];
const TYPING_EVERY_MS = 4000; // the server throttles too (10 s per conversation)
const NOTIFY_KEY = "helpdesk.notify";

const state = {
  queue: QUEUES.includes(new URLSearchParams(location.search).get("queue"))
    ? new URLSearchParams(location.search).get("queue")
    : "waiting",
  tickets: [],
  counts: null,
  ticketId: Number(app.dataset.ticketId) || null,
  ticket: null,
  messages: [],
  local: [], // replies typed here, not yet accepted by the server
  drafts: new Map(), // what was typed in each ticket's composer, kept when switching
  agents: [],
  openContext: new Set(), // context groups the agent unfolded, by first message id
  lastTypingAt: 0,
  waitingSeen: null, // ids of waiting tickets already announced
  live: false,
};

const $ = (id) => document.getElementById(id);

// --- small DOM helpers (text only) -------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function safeUrl(value) {
  // Only http(s) links and pictures: no javascript:, data: or relative tricks.
  try {
    const url = new URL(String(value || ""));
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}

function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  return ((parts[0] || "?")[0] + (parts.length > 1 ? parts[parts.length - 1][0] : "")).toUpperCase();
}

function hue(text) {
  let h = 0;
  for (const ch of String(text)) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}

function fillAvatar(node, contact) {
  node.replaceChildren();
  node.style.setProperty("--avatar-hue", String(hue(contact.psid || contact.name)));
  node.append(el("span", { class: "avatar-initials", text: initials(contact.name) }));
  const src = safeUrl(contact.profile_pic);
  if (src) {
    const img = el("img", { alt: "", referrerPolicy: "no-referrer", loading: "lazy" });
    img.addEventListener("error", () => img.remove());
    img.src = src; // a DOM property: never parsed as markup
    node.append(img);
  }
  return node;
}

function avatar(contact, extra = "") {
  return fillAvatar(el("span", { class: `avatar ${extra}` }), contact);
}

// --- time ---------------------------------------------------------------------------

function duration(ms) {
  const minutes = Math.max(0, Math.floor(ms / 60000));
  if (minutes < 1) return "less than a minute";
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 24) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

function clock(ms) {
  const date = new Date(ms);
  const sameDay = date.toDateString() === new Date().toDateString();
  const time = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  return sameDay ? time : `${date.toLocaleDateString([], { day: "numeric", month: "short" })} ${time}`;
}

// --- API ------------------------------------------------------------------------------

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = csrfToken();
  }
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "The helpdesk could not be reached.");
  }
  if (response.status === 401) {
    sessionEnded();
    throw new ApiError(401, "Your session has ended.");
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `Error ${response.status}`;
    throw new ApiError(response.status, detail);
  }
  return data;
}

function sessionEnded() {
  $("session-notice").hidden = false;
  $("live-notice").hidden = true;
}

// --- labels -----------------------------------------------------------------------------

// Short names for the list; the header shows the full label from the API.
const STATE_SHORT = {
  agent: "with us",
  requested: "requested",
  returning: "returning to bot",
  taken: "taken back",
  bot: "with the bot",
  idle: "idle",
};

const STATE_CLASS = {
  agent: "ok",
  requested: "warn",
  returning: "info",
  taken: "bad",
  bot: "muted",
  idle: "muted",
};

function authorLabel(message, ticket) {
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

function previewText(last) {
  if (!last) return "No messages yet";
  const who = { customer: "", bot: "Bot: ", page_inbox: "Page Inbox: ", agent: "Agent: " }[last.author_kind] ?? "";
  const body = last.text || (last.attachment_types.length ? `[${last.attachment_types.join(", ")}]` : "");
  return who + body;
}

const STATUS_TEXT = {
  pending: "Sending…",
  sending: "Sending…",
  sent: "Sent",
  delivered: "Delivered",
  read: "Read",
};

// --- the ticket list ------------------------------------------------------------------

async function loadList() {
  const params = new URLSearchParams({ queue: state.queue });
  if (state.queue === "closed") params.set("limit", "100");
  const [tickets, counts] = await Promise.all([api("GET", `/tickets?${params}`), api("GET", "/queues")]);
  state.tickets = tickets;
  announce(counts, tickets);
  state.counts = counts;
  renderList();
}

function renderList() {
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

function refreshTimes() {
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

// --- notifications --------------------------------------------------------------------

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

function announce(counts, tickets) {
  let more;
  let name = null;
  if (state.queue === "waiting") {
    // Watching the waiting list: a ticket not seen before is new. (The counts come
    // from a parallel request and may run ahead of the list; the list names who.)
    const seen = state.waitingSeen;
    const fresh = seen ? tickets.find((t) => !seen.has(t.id)) : null;
    if (fresh) name = fresh.contact.name;
    state.waitingSeen = new Set([...(seen || []), ...tickets.map((t) => t.id)]);
    more = Boolean(fresh);
  } else {
    state.waitingSeen = null;
    more = state.counts !== null && counts.waiting > state.counts.waiting;
  }
  if (!more || !notifyEnabled()) return;
  beep();
  if ("Notification" in window && Notification.permission === "granted" && !document.hasFocus()) {
    const body = name ? `${name} is waiting.` : `${counts.waiting} ticket(s) waiting.`;
    new Notification("New waiting ticket", { body, tag: "helpdesk-waiting" });
  }
}

function renderNotifyToggle() {
  const on = notifyEnabled();
  const button = $("notify-toggle");
  button.textContent = on ? "Notifications: on" : "Notifications: off";
  button.setAttribute("aria-pressed", on ? "true" : "false");
}

async function toggleNotify() {
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

// --- one ticket -----------------------------------------------------------------------

async function selectTicket(id, { push = true } = {}) {
  if (id !== state.ticketId) {
    if (state.ticketId) state.drafts.set(state.ticketId, $("composer-text").value);
    state.ticketId = id;
    state.ticket = null;
    state.messages = [];
    state.local = [];
    state.openContext = new Set();
    $("composer-text").value = state.drafts.get(id) || "";
    hideError();
  }
  if (push) history.pushState({ id }, "", id ? `/tickets/${id}/?queue=${state.queue}` : `/?queue=${state.queue}`);
  for (const row of document.querySelectorAll(".ticket-row")) {
    row.classList.toggle("selected", Number(row.dataset.ticketId) === id);
  }
  await loadTicket({ scroll: true });
}

async function loadTicket({ scroll = false } = {}) {
  const id = state.ticketId;
  if (!id) {
    $("conversation").hidden = true;
    $("conversation-placeholder").hidden = false;
    return;
  }
  let ticket, messages;
  try {
    [ticket, messages] = await Promise.all([api("GET", `/tickets/${id}`), api("GET", `/tickets/${id}/messages`)]);
  } catch (error) {
    if (error.status === 404) {
      state.ticketId = null;
      $("conversation").hidden = true;
      $("conversation-placeholder").hidden = false;
      $("conversation-placeholder").textContent = "This ticket does not exist or is not yours to see.";
    }
    return;
  }
  if (id !== state.ticketId) return; // the agent moved on meanwhile
  state.ticket = ticket;
  state.messages = messages;
  renderTicket({ scroll });
}

function renderTicket({ scroll = false } = {}) {
  const ticket = state.ticket;
  $("conversation-placeholder").hidden = true;
  $("conversation").hidden = false;
  $("conversation").dataset.ticketId = String(ticket.id);
  fillAvatar($("conv-avatar"), ticket.contact);
  $("conv-name").textContent = ticket.contact.name;
  $("conv-page").textContent = ticket.page_name;
  const badge = $("conv-state");
  badge.textContent = ticket.control_state_label;
  badge.className = `badge badge-${STATE_CLASS[ticket.control_state] || "muted"}`;
  badge.dataset.state = ticket.control_state;
  $("conv-assignee").textContent = ticket.assignee
    ? `assigned to ${ticket.assignee.id === ME.id ? "you" : ticket.assignee.name}`
    : "unassigned";
  $("conv-status").textContent = ticket.status;
  $("claim-btn").hidden = ticket.status !== "waiting";
  $("close-btn").hidden = ticket.status === "closed";
  renderTransfer(ticket);
  renderWindows(ticket);
  renderComposer(ticket);
  renderTimeline({ scroll });
}

function renderTransfer(ticket) {
  const box = $("transfer-box");
  box.hidden = ticket.status === "closed";
  const select = $("transfer-select");
  const current = select.value;
  const options = state.agents
    .filter((a) => !ticket.assignee || a.id !== ticket.assignee.id)
    .map((a) => el("option", { value: String(a.id), text: a.id === ME.id ? `${a.name} (you)` : a.name }));
  select.replaceChildren(el("option", { value: "", text: "Transfer to…" }), ...options);
  select.value = options.some((o) => o.value === current) ? current : "";
}

function renderWindows(ticket) {
  const now = Date.now();
  const node = $("conv-windows");
  if (!ticket.last_user_message_at) {
    node.textContent = "Messaging windows: the customer has not written yet.";
    return;
  }
  const standard = Date.parse(ticket.window_closes_at);
  const parts = [
    standard > now ? `24-hour window: ${duration(standard - now)} left` : "24-hour window: closed",
  ];
  if (!ticket.human_agent_enabled) {
    parts.push("7-day Human Agent window: not enabled for this page");
  } else {
    const human = Date.parse(ticket.human_agent_window_closes_at);
    parts.push(human > now ? `7-day Human Agent window: ${duration(human - now)} left` : "7-day Human Agent window: closed");
  }
  node.textContent = parts.join(" · ");
  node.classList.toggle("closing", standard - now < 60 * 60000);
}

function renderComposer(ticket) {
  const reason = ticket.lock_reason;
  const text = $("composer-text");
  // Locked, not cleared: nothing typed is lost when control goes away.
  text.disabled = Boolean(reason);
  $("send-btn").disabled = Boolean(reason);
  $("composer-lock").hidden = !reason;
  $("composer-lock-reason").textContent = reason;
  $("request-control-btn").hidden = !ticket.can_request_control;
}

// --- the timeline -------------------------------------------------------------------

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

function renderTimeline({ scroll = false } = {}) {
  const list = $("timeline");
  const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  const ticket = state.ticket;
  const items = [];
  for (const message of state.messages) items.push({ at: message.timestamp, message });
  for (const event of ticket.events) {
    if (EVENT_TEXT[event.kind]) items.push({ at: Date.parse(event.created_at), event });
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
        group = { first: item.message.id, before, nodes: [] };
        nodes.push(group);
      }
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
  list.replaceChildren(...rendered);
  if (scroll || nearBottom) list.scrollTop = list.scrollHeight;
}

function contextNode(group) {
  const details = el(
    "details",
    { class: "context", open: state.openContext.has(group.first) },
    el("summary", {
      text: `${group.before ? "Before the handover" : "After this ticket"}: ${group.nodes.length} message${group.nodes.length === 1 ? "" : "s"} with the bot`,
    }),
    el("ol", { class: "context-messages" }, ...group.nodes),
  );
  details.addEventListener("toggle", () => {
    if (details.open) state.openContext.add(group.first);
    else state.openContext.delete(group.first);
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
  const retrying = message.status === "pending" && message.error;
  return el("div", {
    class: `msg-status ${message.status}`,
    text: retrying ? message.error : STATUS_TEXT[message.status] || message.status,
  });
}

function acceptedAlready(local) {
  // A refetch (after a live event) can bring the reply before its POST has answered.
  return state.messages.some(
    (m) => m.author_kind === "agent" && m.author && m.author.id === ME.id && m.text === local.text.trim() && !local.known.has(m.id),
  );
}

function localNode(local) {
  const status = local.error
    ? el(
        "div",
        { class: "msg-status failed" },
        el("span", { text: `Not sent: ${local.error}` }),
        el("button", { type: "button", class: "link-button", text: "Retry", onclick: () => sendLocal(local) }),
        el("button", {
          type: "button",
          class: "link-button",
          text: "Discard",
          onclick: () => {
            state.local = state.local.filter((l) => l !== local);
            renderTimeline();
          },
        }),
      )
    : el("div", { class: "msg-status pending", text: "Sending…" });
  return el(
    "li",
    { class: "msg msg-agent msg-out msg-local", "data-status": local.error ? "failed" : "local" },
    el("div", { class: "msg-meta" }, el("span", { class: "author", text: "You" }), el("time", { text: clock(local.at) })),
    el("div", { class: "bubble" }, el("span", { class: "text", text: local.text })),
    status,
  );
}

// --- actions --------------------------------------------------------------------------

function showError(text) {
  const node = $("conv-error");
  node.textContent = text;
  node.hidden = false;
}

function hideError() {
  $("conv-error").hidden = true;
}

async function action(fn) {
  hideError();
  try {
    await fn();
  } catch (error) {
    if (error.status !== 401) showError(error.message);
  }
  await Promise.all([loadTicket(), loadList()]).catch(() => {});
}

function sendReply() {
  const text = $("composer-text").value;
  if (!text.trim() || !state.ticket || $("composer-text").disabled) return;
  $("composer-text").value = "";
  state.drafts.delete(state.ticket.id);
  const local = {
    text,
    at: Date.now(),
    ticketId: state.ticket.id,
    error: null,
    known: new Set(state.messages.map((m) => m.id)),
  };
  state.local.push(local);
  renderTimeline({ scroll: true });
  sendLocal(local);
}

async function sendLocal(local) {
  local.error = null;
  renderTimeline({ scroll: true });
  try {
    const message = await api("POST", `/tickets/${local.ticketId}/reply`, { text: local.text });
    state.local = state.local.filter((l) => l !== local);
    if (state.ticketId === local.ticketId && !state.messages.some((m) => m.id === message.id)) {
      state.messages.push(message);
    }
  } catch (error) {
    local.error = error.message;
  }
  if (state.ticketId === local.ticketId) renderTimeline({ scroll: true });
  loadTicket().catch(() => {});
}

function retryMessage(id) {
  action(() => api("POST", `/messages/${id}/retry`));
}

function typing() {
  const ticket = state.ticket;
  if (!ticket || ticket.lock_reason || !$("composer-text").value.trim()) return;
  const now = Date.now();
  if (now - state.lastTypingAt < TYPING_EVERY_MS) return;
  state.lastTypingAt = now;
  api("POST", `/tickets/${ticket.id}/typing`).catch(() => {});
}

function openCloseDialog() {
  const ticket = state.ticket;
  const owned = ticket.control_state === "agent";
  $("closing-message").disabled = !owned;
  $("closing-message").value = "";
  $("close-explain").textContent = owned
    ? "An optional closing message is sent first; then the conversation goes back to the bot."
    : `No closing message can be sent: ${ticket.lock_reason || "the helpdesk does not own the conversation."}`;
  $("close-dialog").showModal();
}

function closeTicket() {
  const ticket = state.ticket;
  const closing = $("closing-message").disabled ? "" : $("closing-message").value;
  const outcome = $("closing-outcome").value || "resolved";
  action(() => api("POST", `/tickets/${ticket.id}/close`, { closing_message: closing, outcome }));
}

// --- live updates ---------------------------------------------------------------------

let socket = null;
let attempts = 0;
let pingTimer = null;
let pongDeadline = null;
let listTimer = null;
let ticketTimer = null;

function schedule(which) {
  // Events come in bursts (a webhook batch): one refetch per burst.
  if (which === "list" && !listTimer) {
    listTimer = setTimeout(() => {
      listTimer = null;
      loadList().catch(() => {});
    }, 100);
  }
  if (which === "ticket" && !ticketTimer) {
    ticketTimer = setTimeout(() => {
      ticketTimer = null;
      loadTicket().catch(() => {});
    }, 100);
  }
}

function onEvent(event) {
  if (event.type === "pong") {
    clearTimeout(pongDeadline);
    return;
  }
  schedule("list");
  const ticket = state.ticket;
  if (
    event.event === "pages.changed" ||
    (ticket && (event.ticket_id === ticket.id || event.conversation_id === ticket.conversation_id))
  ) {
    schedule("ticket");
  }
}

function setLive(live) {
  state.live = live;
  app.dataset.live = live ? "on" : "off";
  $("live-notice").hidden = live || !$("session-notice").hidden;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/inbox/`);
  socket.addEventListener("open", () => {
    attempts = 0;
    $("session-notice").hidden = true;
    setLive(true);
    // Events sent while we were away are gone: fetch the state again.
    loadList().catch(() => {});
    loadTicket().catch(() => {});
    clearInterval(pingTimer);
    pingTimer = setInterval(ping, 25000);
  });
  socket.addEventListener("message", (message) => {
    try {
      onEvent(JSON.parse(message.data));
    } catch {
      // not JSON: ignore
    }
  });
  socket.addEventListener("close", () => {
    clearInterval(pingTimer);
    clearTimeout(pongDeadline);
    setLive(false);
    const delay = Math.min(10000, 500 * 2 ** attempts) * (0.5 + Math.random() / 2);
    attempts += 1;
    setTimeout(connect, delay);
    // A refused socket looks like any other close: ask the API whether we are logged out.
    api("GET", "/queues").catch(() => {});
  });
}

function ping() {
  if (!socket || socket.readyState !== WebSocket.OPEN) return;
  socket.send(JSON.stringify({ type: "ping" }));
  clearTimeout(pongDeadline);
  // No answer: the connection is dead without having said so; start over.
  pongDeadline = setTimeout(() => socket.close(), 10000);
}

// --- wiring ---------------------------------------------------------------------------

function wire() {
  for (const button of document.querySelectorAll(".queue")) {
    button.addEventListener("click", () => {
      state.queue = button.dataset.queue;
      history.replaceState(history.state, "", `${location.pathname}?queue=${state.queue}`);
      state.tickets = [];
      renderList();
      loadList().catch(() => {});
    });
  }
  const text = $("composer-text");
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendReply();
    }
  });
  text.addEventListener("input", typing);
  $("send-btn").addEventListener("click", sendReply);
  $("claim-btn").addEventListener("click", () => action(() => api("POST", `/tickets/${state.ticket.id}/claim`)));
  $("request-control-btn").addEventListener("click", () =>
    action(() => api("POST", `/tickets/${state.ticket.id}/request-control`)),
  );
  $("transfer-btn").addEventListener("click", () => {
    const agentId = Number($("transfer-select").value);
    if (!agentId) return;
    action(() => api("POST", `/tickets/${state.ticket.id}/transfer`, { agent_id: agentId }));
  });
  $("close-btn").addEventListener("click", openCloseDialog);
  $("close-dialog").addEventListener("close", () => {
    if ($("close-dialog").returnValue === "close") closeTicket();
  });
  $("notify-toggle").addEventListener("click", toggleNotify);
  window.addEventListener("popstate", () => {
    const match = location.pathname.match(/^\/tickets\/(\d+)\//);
    selectTicket(match ? Number(match[1]) : null, { push: false });
  });
  setInterval(refreshTimes, 30000);
}

async function start() {
  wire();
  renderNotifyToggle();
  renderList();
  api("GET", "/agents")
    .then((agents) => {
      state.agents = agents;
      if (state.ticket) renderTransfer(state.ticket);
    })
    .catch(() => {});
  connect();
  await Promise.all([loadList(), loadTicket({ scroll: true })]).catch(() => {});
}

start();
