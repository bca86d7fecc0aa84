// Files and images an agent sends (issue 11, point 7): the paper-clip picker, dropping
// files on the conversation, pasting a picture. Before sending, each file is a chip
// (a thumbnail for a picture, its name and size, × to remove it). Meta's limits are
// checked here first, with the reason in words (the server checks them again: it is
// the authority). A reply with files is one multipart POST; the text goes first, then
// one Messenger message per file, in that order. A file's name is only ever text here.

import { api } from "./api.js";
import { loadTicket, putMessage } from "./conversation.js";
import { $, el } from "./dom.js";
import { noteMode } from "./notes.js";
import { state } from "./state.js";
import { renderTimeline } from "./timeline.js";

const pending = new Map(); // ticket id -> [{ file, url }] chosen and not sent yet
let limits = null; // GET /attachments/limits, fetched once
let sending = false;

export function sizeText(size) {
  if (size < 1024) return `${size} bytes`;
  if (size < 1024 * 1024) return `${Math.round(size / 1024)} KB`;
  return `${(Math.round((size * 10) / (1024 * 1024)) / 10).toString()} MB`;
}

function sizeUp(size) {
  // Just over a limit never reads as the limit.
  return `${(Math.ceil((size * 10) / (1024 * 1024)) / 10).toFixed(1).replace(/\.0$/, "")} MB`;
}

async function loadLimits() {
  if (!limits) limits = await api("GET", "/attachments/limits");
  return limits;
}

function extensionOf(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

// The file's refusal in words, or "" when Messenger takes it (the same sentences as
// agents/services/attachments.py; pictures' contents are checked by the server).
function refusal(file, rules) {
  const name = file.name || "file";
  const ext = extensionOf(name);
  if (file.size === 0) return `“${name}” is empty: there is nothing to send.`;
  if (file.size > rules.max_bytes) {
    return `“${name}” is ${sizeUp(file.size)}: Messenger takes files up to ${sizeText(rules.max_bytes)}.`;
  }
  if (rules.programs.includes(ext)) return `“${name}” is a program: the helpdesk does not send programs through Messenger.`;
  if (!rules.extensions.includes(ext)) {
    const what = ext ? `“.${ext}” files` : "files without an extension";
    return `“${name}” can't be sent: ${what} are not among what Messenger takes (${rules.types_in_words}).`;
  }
  return "";
}

function showError(text) {
  const box = $("composer-files-error");
  box.textContent = text;
  box.hidden = !text;
}

function composerLocked() {
  return !state.ticket || Boolean(state.ticket.lock_reason) || $("composer-text").disabled;
}

export async function addFiles(fileList) {
  const files = Array.from(fileList || []);
  if (!files.length || !state.ticketId) return;
  const ticketId = state.ticketId;
  if (noteMode()) {
    showError("Notes are text only: switch to Reply to send files to the customer.");
    return;
  }
  if (composerLocked()) {
    showError("You can't send files right now: the reply box is locked.");
    return;
  }
  let rules;
  try {
    rules = await loadLimits();
  } catch (error) {
    showError(`Files can't be attached now: ${error.message}`);
    return;
  }
  const list = pending.get(ticketId) || [];
  const refused = [];
  for (const file of files) {
    const why = refusal(file, rules);
    if (why) {
      refused.push(why);
      continue;
    }
    if (list.length >= rules.max_files) {
      refused.push(`A reply carries at most ${rules.max_files} files: “${file.name}” was left out.`);
      continue;
    }
    const picture = file.type.startsWith("image/") && ["jpg", "jpeg", "png", "gif", "webp"].includes(extensionOf(file.name));
    list.push({ file, url: picture ? URL.createObjectURL(file) : null });
  }
  pending.set(ticketId, list);
  showError(refused.join(" "));
  renderFiles();
}

function removeFile(ticketId, item) {
  const list = (pending.get(ticketId) || []).filter((entry) => entry !== item);
  if (item.url) URL.revokeObjectURL(item.url);
  pending.set(ticketId, list);
  renderFiles();
  $("composer-text").focus();
}

function chip(ticketId, item) {
  const { file } = item;
  return el(
    "li",
    { class: "file-chip", "data-name": file.name },
    item.url ? el("img", { class: "file-thumb", src: item.url, alt: "" }) : el("span", { class: "file-icon", "aria-hidden": "true", text: extensionOf(file.name).toUpperCase() || "FILE" }),
    el("span", { class: "file-text" }, el("span", { class: "file-name", text: file.name }), el("span", { class: "file-size", text: sizeText(file.size) })),
    el("button", {
      type: "button",
      class: "file-remove",
      "aria-label": `Remove ${file.name}`,
      title: "Remove",
      text: "×",
      disabled: sending,
      onclick: () => removeFile(ticketId, item),
    }),
  );
}

// The chips of the open ticket's composer (each ticket keeps its own, like its draft).
let shown = { ticketId: null, items: [] }; // what the chips show, to rebuild only on change

export function renderFiles() {
  const box = $("composer-files");
  const list = pending.get(state.ticketId) || [];
  const same = shown.ticketId === state.ticketId && shown.items.length === list.length && shown.items.every((item, i) => item === list[i]);
  if (!same) {
    // A live refresh of the ticket re-renders the composer: the chips stay as they are.
    box.replaceChildren(...list.map((item) => chip(state.ticketId, item)));
    shown = { ticketId: state.ticketId, items: [...list] };
  }
  for (const button of box.querySelectorAll(".file-remove")) button.disabled = sending;
  box.hidden = list.length === 0;
  $("attach-btn").disabled = composerLocked() || sending;
  $("attach-btn").hidden = noteMode(); // files go to the customer, never into a note
}

export function ticketChanged() {
  showError("");
  renderFiles();
}

export function hasFiles() {
  return (pending.get(state.ticketId) || []).length > 0;
}

// Send the open ticket's files with the text typed (Enter or Send, as a text reply).
export async function sendFiles() {
  const ticketId = state.ticketId;
  const list = pending.get(ticketId) || [];
  if (!list.length || sending || composerLocked()) return;
  const text = $("composer-text").value;
  const form = new FormData();
  for (const { file } of list) form.append("files", file, file.name);
  if (text.trim()) form.append("text", text);
  sending = true;
  showError("");
  $("send-btn").disabled = true;
  $("composer-files").classList.add("sending");
  renderFiles();
  try {
    const messages = await api("POST", `/tickets/${ticketId}/attachments`, form);
    for (const item of list) if (item.url) URL.revokeObjectURL(item.url);
    pending.delete(ticketId);
    if (state.ticketId === ticketId) {
      $("composer-text").value = "";
      state.drafts.delete(ticketId);
      for (const message of messages) if (!state.messages.some((m) => m.id === message.id)) putMessage(message);
      renderTimeline({ scroll: true });
    }
  } catch (error) {
    // Nothing was stored: the files and the text stay for the agent to fix or retry.
    if (state.ticketId === ticketId) showError(error.message);
  } finally {
    sending = false;
    $("composer-files").classList.remove("sending");
    $("send-btn").disabled = composerLocked();
    renderFiles();
  }
  loadTicket().catch(() => {});
}

function hasDraggedFiles(event) {
  return Array.from(event.dataTransfer?.types || []).includes("Files");
}

export function wireAttachments() {
  const input = $("file-input");
  $("attach-btn").addEventListener("click", () => input.click());
  input.addEventListener("change", () => {
    addFiles(input.files);
    input.value = ""; // the same file can be chosen again after removing it
  });
  // A picture pasted in the reply box (a screenshot): text pastes as usual.
  $("composer-text").addEventListener("paste", (event) => {
    const files = Array.from(event.clipboardData?.files || []);
    if (!files.length) return;
    event.preventDefault();
    addFiles(files);
  });
  const area = $("conversation");
  const zone = $("drop-zone");
  let depth = 0;
  area.addEventListener("dragenter", (event) => {
    if (!hasDraggedFiles(event) || $("composer").hidden) return;
    depth += 1;
    zone.hidden = false;
  });
  area.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) zone.hidden = true;
  });
  area.addEventListener("dragover", (event) => {
    if (hasDraggedFiles(event)) event.preventDefault(); // allows the drop
  });
  area.addEventListener("drop", (event) => {
    depth = 0;
    zone.hidden = true;
    if (!hasDraggedFiles(event)) return;
    event.preventDefault();
    if ($("composer").hidden) return;
    addFiles(event.dataTransfer.files);
  });
}

// A file an agent sent, in the timeline: a picture as a thumbnail that opens it, any
// other file as its name and size, a download link. Only for agents who may see the
// ticket (the server checks every request).
export function sentFileNode(file) {
  if (file.kind === "image") {
    return el(
      "a",
      { class: "attachment sent-file sent-image", href: file.url, target: "_blank", rel: "noopener", title: `${file.name} (${sizeText(file.size)})` },
      el("img", { class: "attachment-image", src: file.url, alt: file.name, loading: "lazy" }),
    );
  }
  return el(
    "a",
    { class: "attachment sent-file attachment-file", href: file.url, download: file.name },
    el("span", { class: "file-icon", "aria-hidden": "true", text: extensionOf(file.name).toUpperCase() || "FILE" }),
    el("span", { class: "file-text" }, el("span", { class: "file-name", text: file.name }), el("span", { class: "file-size", text: sizeText(file.size) })),
  );
}
