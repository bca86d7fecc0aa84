// The JSON API (/api/v1/, session cookie + CSRF header). A 401 shows the session notice
// before the call fails; every failure is an ApiError with a status (0: unreachable) and
// a message that can be shown to the agent as it is. Long lists come a page at a time:
// `apiPage` also returns the cursor of the next page (the X-Next-Cursor header; null on
// the last page).

import { $ } from "./dom.js";
import { noteServerTime } from "./format.js";

const API = "/api/v1";

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

export async function api(method, path, body) {
  return (await request(method, path, body)).data;
}

export async function apiPage(path) {
  const { data, response } = await request("GET", path);
  return { items: data, next: response.headers.get("X-Next-Cursor") };
}

async function request(method, path, body) {
  const headers = { Accept: "application/json" };
  const form = body instanceof FormData; // files (attachments.js): the browser sets its type
  if (method !== "GET") {
    if (!form) headers["Content-Type"] = "application/json";
    headers["X-CSRFToken"] = csrfToken();
  }
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined || form ? body : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "The helpdesk could not be reached.");
  }
  noteServerTime(response.headers.get("X-Server-Time"));
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
    throw new ApiError(response.status, errorText(data, response.status));
  }
  return { data, response };
}

function errorText(data, status) {
  // The server's reason; for input it could not read (422), each problem's message.
  const detail = data && data.detail;
  if (typeof detail === "string" && detail) return detail;
  if (Array.isArray(detail)) {
    const messages = detail.map((issue) => issue && issue.msg).filter((msg) => typeof msg === "string");
    if (messages.length) return messages.join("; ");
  }
  return `Error ${status}`;
}

function sessionEnded() {
  $("session-notice").hidden = false;
  $("live-notice").hidden = true;
}
