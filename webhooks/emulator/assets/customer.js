// The customer page: a Messenger user talking to the page. Plain JS, no build step.
// All user and app text goes through textContent: nothing here ever parses HTML.
"use strict";

(function () {
  const POLL_MS = 500;
  const $ = (id) => document.getElementById(id);
  const state = {
    pages: [],
    users: [],
    pageId: null,
    psid: null,
    lastSeq: 0,
    messages: [],
    generation: 0, // bumps when the user changes, so late answers are ignored
    readUpTo: 0,
  };

  async function api(method, path, body) {
    const options = { method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(data.error || `HTTP ${response.status}`);
    }
    return data;
  }

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function timeOf(ms) {
    return new Date(ms).toLocaleString();
  }

  function threadUrl(suffix) {
    const base = `/emulator/api/threads/${encodeURIComponent(state.pageId)}/${encodeURIComponent(state.psid)}`;
    return suffix ? `${base}/${suffix}` : base;
  }

  function authorLabel(entry) {
    if (entry.author === "user") return el("div", "author", "You");
    const app = entry.app_name || "Page";
    if (!entry.persona) return el("div", "author", app);
    // Messenger shows the persona (its name and picture) where the Page's would be.
    const label = el("div", "author persona");
    label.appendChild(personaPicture(entry.persona));
    label.appendChild(el("span", "persona-name", entry.persona.name));
    label.appendChild(el("span", "via muted", ` · via ${app}`));
    return label;
  }

  function personaPicture(persona) {
    const url = persona.profile_picture_url;
    // The page loads nothing from elsewhere (CSP): a picture on another host shows as
    // the persona's initial, with its address on hover.
    if (url && new URL(url, window.location.href).origin === window.location.origin) {
      const img = el("img", "persona-picture");
      img.src = url;
      img.alt = "";
      return img;
    }
    const initial = el("span", "persona-picture", (persona.name || "?").trim().charAt(0).toUpperCase());
    if (url) initial.title = url;
    return initial;
  }

  // A file an app uploaded is served by the emulator itself (same origin): a picture
  // is shown, any other file is a link with its name. Anything else stays a label.
  function attachmentNode(attachment) {
    const url = String(attachment.url || "");
    const local = url.startsWith(`${location.origin}/emulator/media/`);
    if (local && attachment.type === "image") {
      const link = el("a", "attachment attachment-image-link");
      link.href = url;
      link.target = "_blank";
      link.rel = "noopener";
      const img = el("img", "attachment-image");
      img.alt = attachment.title || "picture";
      // A picture that loads after the list scrolled down pushes the end out of view.
      img.addEventListener("load", () => {
        const list = $("messages");
        if (list.scrollHeight - list.scrollTop - list.clientHeight < img.clientHeight + 80) {
          list.scrollTop = list.scrollHeight;
        }
      });
      img.src = url;
      link.appendChild(img);
      return link;
    }
    if (local) {
      const link = el("a", "attachment attachment-file", attachment.title || `${attachment.type} file`);
      link.href = url;
      link.download = attachment.title || "";
      return link;
    }
    return el("div", "attachment", `[${attachment.type}] ${url}`);
  }

  function renderEntry(entry) {
    if (entry.kind === "event") {
      const line = el("div", "event", entry.text);
      line.dataset.author = "system";
      line.dataset.testid = "event";
      line.title = timeOf(entry.timestamp);
      return line;
    }
    const row = el("div", "message");
    row.dataset.author = entry.author;
    row.dataset.mid = entry.mid || "";
    row.dataset.seq = String(entry.seq);
    row.dataset.testid = "message";
    row.title = timeOf(entry.timestamp);
    if (entry.persona) row.dataset.persona = entry.persona.name;
    row.appendChild(authorLabel(entry));
    const bubble = el("div", "bubble");
    if (entry.kind === "postback") bubble.classList.add("tapped");
    if (entry.text) bubble.appendChild(el("div", "text", entry.text));
    for (const attachment of entry.attachments || []) {
      bubble.appendChild(attachmentNode(attachment));
    }
    for (const card of entry.cards || []) {
      const box = el("div", "card");
      box.appendChild(el("div", "card-title", card.title));
      if (card.subtitle) box.appendChild(el("div", "card-subtitle", card.subtitle));
      bubble.appendChild(box);
    }
    const buttons = entry.buttons || [];
    if (buttons.length) {
      const list = el("div", "buttons");
      buttons.forEach((button, index) => {
        if (button.type === "web_url") {
          const link = el("span", "url-button", `${button.title} ↗`);
          link.title = button.url;
          list.appendChild(link);
          return;
        }
        const b = el("button", "postback-button", button.title);
        b.type = "button";
        b.dataset.index = String(index);
        b.dataset.testid = "postback-button";
        b.addEventListener("click", () => tapButton(entry.mid, index));
        list.appendChild(b);
      });
      bubble.appendChild(list);
    }
    if (entry.reaction) bubble.appendChild(el("span", "reaction", entry.reaction));
    row.appendChild(bubble);
    return row;
  }

  function renderQuickReplies() {
    const box = $("quick-replies");
    box.replaceChildren();
    // Messenger shows quick replies only under the newest message, until the user acts.
    const last = [...state.messages].reverse().find((m) => m.kind !== "event");
    if (!last || last.author === "user") return;
    (last.quick_replies || []).forEach((reply, index) => {
      const b = el("button", "quick-reply", reply.title);
      b.type = "button";
      b.dataset.index = String(index);
      b.dataset.payload = reply.payload;
      b.dataset.testid = "quick-reply";
      b.addEventListener("click", () => tapQuickReply(last.mid, index));
      box.appendChild(b);
    });
  }

  function renderThread(thread) {
    const owner = thread.owner;
    const label = owner ? `Handled by ${owner.name}` : "Idle (nobody owns the thread)";
    const ownerBox = $("thread-owner");
    ownerBox.textContent = `${label} · ${thread.window_open ? "window open" : "24 h window closed"}`;
    ownerBox.dataset.owner = owner ? owner.app_id : "";
    $("page-name").textContent = thread.page.name;
    const typing = $("typing");
    if (thread.typing) {
      $("typing-name").textContent = `${thread.typing.name} is typing…`;
      typing.hidden = false;
    } else {
      typing.hidden = true;
    }
  }

  async function poll() {
    if (!state.psid) return;
    const generation = state.generation;
    let thread;
    try {
      thread = await api("GET", `${threadUrl()}?after=${state.lastSeq}`);
    } catch (error) {
      showError(`Cannot reach the emulator: ${error.message}`);
      return;
    }
    if (generation !== state.generation) return;
    showError("");
    renderThread(thread);
    const list = $("messages");
    const nearBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 80;
    let added = false;
    for (const entry of thread.messages) {
      if (entry.seq <= state.lastSeq) continue;
      state.lastSeq = entry.seq;
      state.messages.push(entry);
      list.appendChild(renderEntry(entry));
      added = true;
    }
    if (added) {
      renderQuickReplies();
      if (nearBottom || thread.messages.length) list.scrollTop = list.scrollHeight;
      markRead();
    }
  }

  function markRead() {
    // The user "sees" the page's messages: Messenger sends delivery and read receipts.
    const newest = [...state.messages]
      .reverse()
      .find((m) => m.kind === "message" && m.author !== "user");
    if (!newest || newest.seq <= state.readUpTo || document.hidden) return;
    state.readUpTo = newest.seq;
    api("POST", threadUrl("read"), {}).catch(() => {});
  }

  async function act(path, body) {
    try {
      await api("POST", threadUrl(path), body);
      showError("");
    } catch (error) {
      showError(error.message);
    }
    await poll();
  }

  function tapButton(mid, index) {
    return act("postbacks", { mid, index });
  }

  function tapQuickReply(mid, index) {
    $("quick-replies").replaceChildren();
    return act("messages", { quick_reply: { mid, index } });
  }

  function selectUser(pageId, psid) {
    state.pageId = pageId;
    state.psid = psid;
    state.lastSeq = 0;
    state.readUpTo = 0;
    state.messages = [];
    state.generation += 1;
    $("messages").replaceChildren();
    $("quick-replies").replaceChildren();
    localStorage.setItem("emulator.customer", JSON.stringify({ pageId, psid }));
    const url = new URL(window.location.href);
    url.searchParams.set("page", pageId);
    url.searchParams.set("psid", psid);
    history.replaceState(null, "", url);
    poll();
  }

  function fillSelects() {
    const pageSelect = $("page-select");
    pageSelect.replaceChildren(
      ...state.pages.map((p) => {
        const option = el("option", "", `${p.name} (${p.mode})`);
        option.value = p.id;
        return option;
      }),
    );
    pageSelect.value = state.pageId;
    const userSelect = $("user-select");
    userSelect.replaceChildren(
      ...state.users
        .filter((u) => u.page_id === state.pageId)
        .map((u) => {
          const option = el("option", "", `${u.name} (${u.psid})`);
          option.value = u.psid;
          return option;
        }),
    );
    userSelect.value = state.psid || "";
  }

  async function loadState() {
    const data = await api("GET", "/emulator/api/state");
    state.pages = data.pages;
    state.users = data.users;
  }

  async function init() {
    await loadState();
    const params = new URLSearchParams(window.location.search);
    let saved = {};
    try {
      saved = JSON.parse(localStorage.getItem("emulator.customer") || "{}");
    } catch (_) {
      saved = {};
    }
    const exists = (pageId, psid) =>
      state.users.some((u) => u.page_id === pageId && u.psid === psid);
    let pageId = params.get("page") || saved.pageId;
    let psid = params.get("psid") || saved.psid;
    if (psid && !pageId) pageId = (state.users.find((u) => u.psid === psid) || {}).page_id;
    if (!exists(pageId, psid)) {
      pageId = state.pages[0] && state.pages[0].id;
      const first = state.users.find((u) => u.page_id === pageId);
      psid = first ? first.psid : null;
    }
    state.pageId = pageId;
    state.psid = psid;
    fillSelects();
    if (psid) selectUser(pageId, psid);

    $("page-select").addEventListener("change", (event) => {
      const pageId = event.target.value;
      const first = state.users.find((u) => u.page_id === pageId);
      state.pageId = pageId;
      state.psid = first ? first.psid : null;
      fillSelects();
      if (first) selectUser(pageId, first.psid);
    });
    $("user-select").addEventListener("change", (event) => {
      selectUser(state.pageId, event.target.value);
    });
    $("new-user-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const user = await api("POST", "/emulator/api/users", {
          page_id: state.pageId,
          first_name: $("new-user-first").value,
          last_name: $("new-user-last").value,
        });
        $("new-user-first").value = "";
        $("new-user-last").value = "";
        await loadState();
        state.psid = user.psid;
        fillSelects();
        selectUser(state.pageId, user.psid);
      } catch (error) {
        showError(error.message);
      }
    });
    $("composer-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const input = $("composer");
      const text = input.value.trim();
      if (!text || !state.psid) return;
      input.value = "";
      await act("messages", { text });
      input.focus();
    });
    document.addEventListener("visibilitychange", markRead);
    setInterval(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    init().catch((error) => showError(`Cannot load the emulator state: ${error.message}`));
  });
})();
