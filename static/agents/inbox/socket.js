// /ws/inbox/: small events that say what changed (live.js fetches and patches it in).
// Pings every 25 s (a dead connection is closed after 10 s without a pong), reconnects
// with backoff and refetches everything on (re)connect, since events sent meanwhile are
// gone.

import { api } from "./api.js";
import { $ } from "./dom.js";
import { receive, refetchAll } from "./live.js";
import { routingEvent, socketClosed, socketOpened } from "./routing.js";
import { app, state } from "./state.js";

let socket = null;
let attempts = 0;
let pingTimer = null;
let pongDeadline = null;

function onEvent(event) {
  if (event.type === "pong") {
    clearTimeout(pongDeadline);
    return;
  }
  if (routingEvent(event)) return; // presence and assignments (routing.js)
  receive(event);
}

function setLive(live) {
  state.live = live;
  app.dataset.live = live ? "on" : "off";
  $("live-notice").hidden = live || !$("session-notice").hidden;
}

export function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/ws/inbox/`);
  socket.addEventListener("open", () => {
    attempts = 0;
    $("session-notice").hidden = true;
    setLive(true);
    // Events sent while we were away are gone: fetch the state again.
    refetchAll();
    clearInterval(pingTimer);
    pingTimer = setInterval(ping, 25000);
    socketOpened(socket); // follow presence; the socket's heartbeat is the pings
  });
  socket.addEventListener("message", (message) => {
    try {
      // One event, or several in their order: {"events": [...]}.
      const frame = JSON.parse(message.data);
      for (const event of Array.isArray(frame.events) ? frame.events : [frame]) onEvent(event);
    } catch {
      // not JSON: ignore
    }
  });
  socket.addEventListener("close", () => {
    clearInterval(pingTimer);
    clearTimeout(pongDeadline);
    setLive(false);
    socketClosed();
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
