// The control page: state, fault injection, clock. Plain JS; text via textContent only.
"use strict";

(function () {
  const POLL_MS = 1000;
  const $ = (id) => document.getElementById(id);
  let appNames = {};

  async function api(method, path, body) {
    const options = { method, headers: {} };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || data.detail || `HTTP ${response.status}`);
    return data;
  }

  function showError(message) {
    $("error").textContent = message || "";
    $("error").hidden = !message;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function cell(text, className) {
    return el("td", className, text);
  }

  function when(ms) {
    return ms ? new Date(ms).toLocaleString() : "—";
  }

  function button(label, className, onClick) {
    const b = el("button", className, label);
    b.type = "button";
    b.addEventListener("click", async () => {
      try {
        await onClick();
        showError("");
      } catch (error) {
        showError(error.message);
      }
      refresh();
    });
    return b;
  }

  function duration(seconds) {
    const hours = seconds / 3600;
    return hours >= 1 ? `${hours.toFixed(1)} h` : `${Math.round(seconds)} s`;
  }

  const MODES = [
    ["cr", "Conversation Routing with a default app"],
    ["cr-zero-config", "Conversation Routing without a default app"],
    ["legacy", "Handover Protocol (legacy)"],
  ];
  const reissued = {}; // "page/app" -> the token the last reissue gave

  function post(path, body) {
    return api("POST", path, body);
  }

  function toggle(className, label, onChange) {
    const box = el("label", `toggle ${className}-label`);
    const input = el("input", className);
    input.type = "checkbox";
    input.addEventListener("change", async () => {
      try {
        await onChange(input.checked);
        showError("");
      } catch (error) {
        showError(error.message);
      }
      refresh();
    });
    box.append(input, ` ${label}`);
    return box;
  }

  // The pages panel is built once per set of pages and apps, then only updated: a select
  // or checkbox rebuilt every second would close under the pointer.
  let pagesKey = "";

  function buildPages(state) {
    const key = JSON.stringify([state.pages.map((p) => p.id), state.apps.map((a) => a.app_id)]);
    if (key === pagesKey) return;
    pagesKey = key;
    $("pages").replaceChildren(
      ...state.pages.map((page) => {
        const base = `/emulator/api/pages/${page.id}`;
        const box = el("div", "page-setup");
        box.dataset.pageId = page.id;
        box.appendChild(el("h3", "", `${page.name} (${page.id})`));
        const summary = el("p", "page-summary");
        const restricted = el("span", "page-restricted-note bad", " · RESTRICTED from sending");
        summary.append("Routing: ", el("strong", "page-mode-text"), el("span", "page-mode-extra muted"),
          restricted);
        box.appendChild(summary);

        const routing = el("div", "setup-group");
        const modeLabel = el("label", "", "Mode ");
        const select = el("select", "page-mode");
        for (const [value, text] of MODES) {
          const option = el("option", "", text);
          option.value = value;
          select.appendChild(option);
        }
        select.addEventListener("change", async () => {
          try {
            await post(`${base}/mode`, { mode: select.value });
            showError("");
          } catch (error) {
            showError(error.message);
          }
          refresh();
        });
        modeLabel.appendChild(select);
        routing.appendChild(modeLabel);
        routing.appendChild(toggle("requests-refused",
          "request_thread_control refused (\u201cHandover Protocol APIs disabled\u201d)",
          (on) => post(`${base}/requests-refused`, { refused: on })));
        routing.appendChild(toggle("thread-control-refused",
          "Send API refuses thread_control",
          (on) => post(`${base}/thread-control-refused`, { refused: on })));
        box.appendChild(routing);

        box.appendChild(el("h4", "", "Allowed to take control of conversations (CR)"));
        const takers = el("div", "setup-group");
        for (const app of state.apps) {
          const item = toggle("take-allowed", `${app.name}`,
            (on) => post(`${base}/take-allowed`, { app_id: app.app_id, allowed: on }));
          item.dataset.appId = app.app_id;
          takers.appendChild(item);
        }
        box.appendChild(takers);

        box.appendChild(el("h4", "", "Page-level faults"));
        const faults = el("div", "setup-group");
        faults.appendChild(toggle("page-restricted",
          "Page restricted from sending (every send: 10/1893063)",
          (on) => post(`${base}/restricted`, { restricted: on })));
        box.appendChild(faults);
        const list = el("div", "app-faults");
        for (const app of state.apps) {
          const row = el("div", "app-fault-row setup-group");
          row.dataset.appId = app.app_id;
          const appBase = `${base}/apps/${app.app_id}`;
          row.appendChild(el("strong", "app-fault-name", app.name));
          row.appendChild(toggle("token-expired", "token expired (190/463)",
            (on) => post(`${appBase}/token-expired`, { expired: on })));
          row.appendChild(toggle("permission-revoked", "pages_messaging revoked (#230)",
            (on) => post(`${appBase}/permission-revoked`, { revoked: on })));
          row.appendChild(button("Reissue token", "token-reissue", async () => {
            const answer = await post(`${appBase}/token-reissue`, {});
            reissued[`${page.id}/${app.app_id}`] = answer.access_token;
          }));
          row.appendChild(el("div", "reissued-token mono"));
          list.appendChild(row);
        }
        box.appendChild(list);
        return box;
      }),
    );
  }

  function setChecked(input, value) {
    if (input && document.activeElement !== input) input.checked = !!value;
  }

  function renderPages(state) {
    buildPages(state);
    for (const page of state.pages) {
      const box = $("pages").querySelector(`.page-setup[data-page-id="${page.id}"]`);
      if (!box) continue;
      box.dataset.mode = page.mode;
      box.querySelector(".page-mode-text").textContent = page.mode_text;
      const extra = [];
      if (page.mode === "cr") {
        extra.push(page.requests_refused ? "requests refused" : "requests answered");
        const takers = page.take_control_app_ids.map((id) => appNames[id] || id);
        extra.push(`may take: ${takers.join(", ") || "nobody"}`);
      }
      if (page.thread_control_refused) extra.push("thread_control refused");
      box.querySelector(".page-mode-extra").textContent = extra.length ? ` · ${extra.join(" · ")}` : "";
      box.querySelector(".page-restricted-note").hidden = !page.restricted;
      const select = box.querySelector(".page-mode");
      if (document.activeElement !== select) select.value = page.mode;
      const requests = box.querySelector(".requests-refused");
      setChecked(requests, page.requests_refused);
      requests.disabled = page.mode !== "cr";
      setChecked(box.querySelector(".thread-control-refused"), page.thread_control_refused);
      setChecked(box.querySelector(".page-restricted"), page.restricted);
      for (const item of box.querySelectorAll(".take-allowed-label")) {
        const input = item.querySelector("input");
        setChecked(input, page.take_control_app_ids.includes(item.dataset.appId));
        input.disabled = page.mode !== "cr";
      }
      for (const app of state.apps) {
        const row = box.querySelector(`.app-fault-row[data-app-id="${app.app_id}"]`);
        const sub = app.subscriptions.find((s) => s.page_id === page.id);
        if (!row || !sub) continue;
        setChecked(row.querySelector(".token-expired"), sub.token_expired);
        setChecked(row.querySelector(".permission-revoked"), sub.permission_revoked);
        const token = reissued[`${page.id}/${app.app_id}`];
        row.querySelector(".reissued-token").textContent = token
          ? `new token: ${token}` : sub.token_reissued ? "reissued" : "";
      }
    }
  }

  function renderState(state) {
    $("graph-url").textContent = `GRAPH_API_URL=${state.graph_url}`;
    $("clock-now").textContent = when(state.now);
    $("clock-offset").textContent = `+${duration(state.clock_offset_seconds)}`;
    appNames = Object.fromEntries(state.apps.map((a) => [a.app_id, a.name]));
    renderPages(state);
    const shared = state.webhook_faults["*"] || {};
    $("duplicate").checked = !!shared.duplicate;
    $("out-of-order").checked = !!shared.out_of_order;
    if (document.activeElement !== $("late-seconds")) $("late-seconds").value = shared.late_seconds || 0;

    $("armed-faults").replaceChildren(
      ...state.graph_faults.map((f) => {
        const applied = f.applied ? ", applied" : "";
        const detail = f.kind === "5xx" ? `HTTP ${f.status}${applied}` : f.kind === "timeout"
          ? `${f.seconds} s${applied}` : "code 613";
        return el("li", "", `${f.remaining} × ${f.kind} (${detail})${f.path ? ` on *${f.path}*` : ""}`);
      }),
    );
    if (!state.graph_faults.length) $("armed-faults").appendChild(el("li", "muted", "none"));

    const threads = $("threads-table").tBodies[0];
    threads.replaceChildren(
      ...state.threads.map((t) => {
        const row = el("tr");
        row.dataset.psid = t.psid;
        row.appendChild(cell(t.user));
        row.appendChild(cell(t.psid, "mono"));
        row.appendChild(cell(t.owner ? `${t.owner_name} (${t.owner})` : "idle", "owner"));
        row.appendChild(cell(t.expiration ? when(t.expiration) : "—"));
        row.appendChild(cell(when(t.last_user_at)));
        const windows = [t.window_open ? "24 h open" : "24 h closed",
          t.human_agent_window_open ? "7 d open" : "7 d closed"].join(" · ");
        row.appendChild(cell(windows));
        const actions = el("td", "actions");
        actions.appendChild(button("Bot takes control", "take-control", () =>
          api("POST", `/emulator/api/threads/${t.page_id}/${t.psid}/take`, {
            metadata: "taken from the control page",
          })));
        actions.appendChild(button("Page Inbox replies…", "inbox-reply", () => {
          const text = window.prompt("Reply from the Page Inbox (it takes control):");
          if (!text) return Promise.resolve();
          return api("POST", `/emulator/api/threads/${t.page_id}/${t.psid}/inbox-reply`, { text });
        }));
        const open = el("a", "nav-link", "Open as customer");
        open.href = `/?page=${encodeURIComponent(t.page_id)}&psid=${encodeURIComponent(t.psid)}`;
        actions.appendChild(open);
        row.appendChild(actions);
        return row;
      }),
    );

    const apps = $("apps-table").tBodies[0];
    apps.replaceChildren(
      ...state.apps.map((a) => {
        const row = el("tr");
        row.dataset.appId = a.app_id;
        row.appendChild(cell(`${a.name} (${a.app_id})`));
        row.appendChild(cell(a.role + (a.human_agent ? ", Human Agent" : "")));
        row.appendChild(cell(a.in_process ? "in process" : a.callback_url || "—", "mono"));
        const subscribed = a.subscriptions.every((s) => s.active);
        row.appendChild(cell(subscribed ? "yes" : "NO (unsubscribed)", subscribed ? "" : "bad"));
        const health = a.delivery || {};
        const parts = [];
        if (health.queued) parts.push(`${health.queued} queued`);
        if (health.failing_since) parts.push(`failing since ${when(health.failing_since)}`);
        for (const alert of health.alerts || []) parts.push(`${alert.kind} (${when(alert.at)})`);
        row.appendChild(cell(parts.join("; ") || "ok"));
        const actions = el("td", "actions");
        actions.appendChild(button("Re-subscribe", "subscribe", () =>
          api("POST", `/emulator/api/apps/${a.app_id}/subscribe`, {})));
        actions.appendChild(button("Unsubscribe", "unsubscribe", () =>
          api("POST", `/emulator/api/apps/${a.app_id}/unsubscribe`, {})));
        row.appendChild(actions);
        return row;
      }),
    );
  }

  function renderDeliveries(deliveries) {
    const body = $("deliveries-table").tBodies[0];
    body.replaceChildren(
      ...deliveries.map((d) => {
        const row = el("tr");
        row.dataset.status = d.status;
        row.appendChild(cell(d.duplicate_of ? `${d.id} (copy of ${d.duplicate_of})` : d.id));
        row.appendChild(cell(appNames[d.app_id] || d.app_id));
        row.appendChild(cell(d.events.map((e) => `${e.channel}: ${e.kind}`).join(", ")));
        row.appendChild(cell(d.status, `status-${d.status}`));
        row.appendChild(cell(d.attempts.map((a) => a.status || a.error).join(" → ") || "—"));
        return row;
      }),
    );
  }

  function renderCalls(calls) {
    const body = $("calls-table").tBodies[0];
    body.replaceChildren(
      ...calls.map((c) => {
        const row = el("tr");
        row.appendChild(cell(when(c.at)));
        row.appendChild(cell(appNames[c.app_id] || c.app_id || "?"));
        row.appendChild(cell(`${c.method} ${c.path}`, "mono"));
        const answer = c.error_code
          ? `${c.status} · code ${c.error_code}${c.error_subcode ? `/${c.error_subcode}` : ""}`
          : c.status || "no answer";
        row.appendChild(cell(answer, c.status === 200 ? "" : "bad"));
        row.appendChild(cell(c.fault || ""));
        return row;
      }),
    );
  }

  async function refresh() {
    try {
      const [state, deliveries, calls] = await Promise.all([
        api("GET", "/emulator/api/state"),
        api("GET", "/emulator/api/deliveries?limit=30"),
        api("GET", "/emulator/api/graph-calls?limit=30"),
      ]);
      renderState(state);
      renderDeliveries(deliveries.deliveries);
      renderCalls(calls.calls);
    } catch (error) {
      showError(`Cannot reach the emulator: ${error.message}`);
    }
  }

  async function advance(hours) {
    try {
      await api("POST", "/emulator/api/clock", { advance_hours: Number(hours) });
      showError("");
    } catch (error) {
      showError(error.message);
    }
    refresh();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("clock-form").addEventListener("submit", (event) => {
      event.preventDefault();
      advance($("advance-hours").value);
    });
    for (const preset of document.querySelectorAll(".advance-preset")) {
      preset.addEventListener("click", () => advance(preset.dataset.hours));
    }
    $("graph-fault-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        await api("POST", "/emulator/api/faults/graph", {
          kind: $("fault-kind").value,
          count: Number($("fault-count").value),
          status: Number($("fault-status").value),
          seconds: Number($("fault-seconds").value),
          applied: $("fault-applied").checked,
          path: $("fault-path").value || null,
        });
        showError("");
      } catch (error) {
        showError(error.message);
      }
      refresh();
    });
    $("clear-faults").addEventListener("click", async () => {
      await api("POST", "/emulator/api/faults/clear", {}).catch((e) => showError(e.message));
      refresh();
    });
    for (const [id, key] of [["duplicate", "duplicate"], ["out-of-order", "out_of_order"]]) {
      $(id).addEventListener("change", async (event) => {
        await api("POST", "/emulator/api/faults/webhooks", { [key]: event.target.checked })
          .catch((e) => showError(e.message));
        refresh();
      });
    }
    $("late-seconds").addEventListener("change", async (event) => {
      const seconds = Number(event.target.value) || 0;
      await api("POST", "/emulator/api/faults/webhooks", { late_seconds: seconds, late_echoes_only: true })
        .catch((e) => showError(e.message));
      refresh();
    });
    refresh();
    setInterval(refresh, POLL_MS);
  });
})();
