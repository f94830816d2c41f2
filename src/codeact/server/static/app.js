// The codeact page: runs, a live timeline read from the run's event stream, approvals.
//
// Everything a run produced (task, thoughts, code, tool arguments and results, observations,
// answers, file names) is untrusted text. It only ever reaches the page through textContent
// and createElement (the `el` helper below); no HTML string is ever built from it.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const MAX_TEXT = 20000; // characters shown of one text field (the rest is cut, and says so)
  const IMAGE_TYPES = { png: "image/png", jpg: "image/jpeg", jpeg: "image/jpeg", gif: "image/gif", webp: "image/webp" };

  const state = {
    token: null,
    config: null,
    runId: null,
    lastSeq: 0,
    stream: null, // AbortController of the open event stream
    steps: new Map(), // step index -> {card, tools, approvals}
    run: null,
    clock: null,
    watching: null, // the run whose waiting calls are being fetched
  };

  // -- DOM helpers: text only ---------------------------------------------------------------
  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = clip(text);
    return node;
  }
  function clip(value) {
    const text = typeof value === "string" ? value : String(value);
    return text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) + `\n[... ${text.length - MAX_TEXT} more characters]` : text;
  }
  function json(value) {
    try {
      return JSON.stringify(value, null, 2);
    } catch (e) {
      return String(value);
    }
  }
  function codeBlock(source) {
    const pre = el("pre", "code");
    const code = document.createElement("code");
    if (window.codeactHighlight) window.codeactHighlight(code, clip(source));
    else code.textContent = clip(source);
    pre.appendChild(code);
    return pre;
  }
  function seconds(s) {
    if (typeof s !== "number" || !isFinite(s)) return "";
    return s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(1)} s`;
  }

  // -- the API --------------------------------------------------------------------------------
  async function api(method, path, body) {
    const headers = { Authorization: `Bearer ${state.token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    if (response.status === 401) {
      signOut();
      throw new Error("the token was refused");
    }
    const data = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
    if (!response.ok) {
      const detail = data && data.detail;
      throw new Error(typeof detail === "string" ? detail : `HTTP ${response.status}`);
    }
    return data;
  }

  // -- signing in -----------------------------------------------------------------------------
  function readToken() {
    const hash = new URLSearchParams(location.hash.slice(1));
    const fromHash = hash.get("token");
    if (fromHash) {
      sessionStorage.setItem("codeact-token", fromHash);
      hash.delete("token");
      history.replaceState(null, "", location.pathname + location.search + (hash.toString() ? "#" + hash : ""));
    }
    return sessionStorage.getItem("codeact-token");
  }
  function signOut() {
    sessionStorage.removeItem("codeact-token");
    state.token = null;
    $("app").hidden = true;
    $("login").hidden = false;
  }
  async function signIn(token) {
    state.token = token;
    try {
      state.config = await api("GET", "/api/config");
    } catch (e) {
      signOut();
      return;
    }
    sessionStorage.setItem("codeact-token", token);
    $("login").hidden = true;
    $("app").hidden = false;
    $("who").textContent = state.config.user;
    const select = $("model");
    select.textContent = "";
    for (const name of state.config.models) {
      const option = el("option", "", name);
      option.value = name;
      option.selected = name === state.config.default_model;
      select.appendChild(option);
    }
    $("max-steps").max = String(state.config.limits.max_steps);
    await loadRuns();
    const wanted = new URLSearchParams(location.hash.slice(1)).get("run");
    if (wanted) openRun(wanted);
    else document.body.classList.add("side-open"); // on a phone, the form first
  }

  // -- the run list ---------------------------------------------------------------------------
  async function loadRuns() {
    let runs;
    try {
      runs = await api("GET", "/api/runs?limit=100");
    } catch (e) {
      return;
    }
    const list = $("runs");
    list.textContent = "";
    for (const run of runs) {
      const item = el("li", run.id === state.runId ? "selected" : "");
      const button = el("button", "run-link");
      button.type = "button";
      button.appendChild(el("span", `badge ${run.status}`, run.status));
      button.appendChild(el("span", "run-task", run.task));
      button.addEventListener("click", () => {
        openRun(run.id);
        document.body.classList.remove("side-open");
      });
      item.appendChild(button);
      list.appendChild(item);
    }
  }

  // -- starting a run -------------------------------------------------------------------------
  function readFile(file) {
    return new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    });
  }
  async function startRun(event) {
    event.preventDefault();
    $("form-error").textContent = "";
    $("start").disabled = true;
    try {
      const files = [];
      for (const file of $("files").files) files.push({ path: file.name, content_base64: await readFile(file) });
      const run = await api("POST", "/api/runs", {
        task: $("task").value,
        model: $("model").value,
        max_steps: Number($("max-steps").value) || 10,
        files,
      });
      $("files").value = "";
      await loadRuns();
      openRun(run.id);
    } catch (e) {
      $("form-error").textContent = e.message;
    } finally {
      $("start").disabled = false;
    }
  }

  // -- one run --------------------------------------------------------------------------------
  function openRun(runId) {
    if (state.stream) state.stream.abort();
    state.runId = runId;
    state.lastSeq = 0;
    state.steps = new Map();
    state.run = null;
    history.replaceState(null, "", `#run=${encodeURIComponent(runId)}`);
    $("empty").hidden = true;
    $("run").hidden = false;
    $("timeline").textContent = "";
    $("approvals").textContent = "";
    $("file-list").textContent = "";
    $("files-out").hidden = true;
    for (const item of $("runs").children) item.classList.remove("selected");
    refreshRun();
    refreshApprovals();
    follow(runId);
  }

  async function refreshRun() {
    const runId = state.runId;
    let run;
    try {
      run = await api("GET", `/api/runs/${encodeURIComponent(runId)}`);
    } catch (e) {
      $("run-error").textContent = e.message;
      return;
    }
    if (runId !== state.runId) return;
    state.run = run;
    showHeader();
    clearInterval(state.clock);
    if (run.live) state.clock = setInterval(showHeader, 1000);
  }

  function showHeader() {
    const run = state.run;
    if (!run) return;
    $("run-task").textContent = clip(run.task);
    const status = $("run-status");
    status.textContent = run.status;
    status.className = `badge ${run.status}`;
    const budget = run.budget || {};
    $("run-steps").textContent = `steps ${run.steps}${budget.max_steps ? " / " + budget.max_steps : ""}`;
    const tokens = run.prompt_tokens + run.completion_tokens;
    $("run-tokens").textContent = `tokens ${tokens.toLocaleString()}${budget.max_tokens ? " / " + budget.max_tokens.toLocaleString() : ""}`;
    $("run-cost").textContent = typeof run.cost === "number" ? `$${run.cost.toFixed(4)}` : "";
    const end = run.live ? Date.now() / 1000 : run.updated;
    $("run-time").textContent = seconds(Math.max(0, end - run.created)) + (budget.max_seconds ? ` / ${budget.max_seconds} s` : "");
    $("run-error").textContent = run.error ? clip(run.error) : "";
    $("cancel").hidden = !run.live;
    $("resume").hidden = run.live || run.status === "success";
  }

  // The run's events, read from the log as Server-Sent Events over fetch (so the token goes in
  // a header), reconnecting with Last-Event-ID until the stream says the run is over.
  async function follow(runId) {
    const controller = new AbortController();
    state.stream = controller;
    let ended = false;
    while (!ended && !controller.signal.aborted && runId === state.runId) {
      try {
        const headers = { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" };
        if (state.lastSeq) headers["Last-Event-ID"] = String(state.lastSeq);
        const response = await fetch(`/api/runs/${encodeURIComponent(runId)}/events`, { headers, signal: controller.signal });
        if (response.status >= 400 && response.status < 500 && response.status !== 429) {
          $("run-error").textContent = `the run's events cannot be read (HTTP ${response.status})`;
          return; // no such run (or not ours): asking again would not change that
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            if (onBlock(block) === "end") ended = true;
          }
        }
      } catch (e) {
        if (controller.signal.aborted) return;
      }
      if (!ended) await new Promise((r) => setTimeout(r, 1000));
    }
  }

  function onBlock(block) {
    let id = null;
    let kind = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "id") id = value;
      else if (field === "event") kind = value;
      else if (field === "data") data.push(value);
    }
    if (!data.length) return null;
    let event;
    try {
      event = JSON.parse(data.join("\n"));
    } catch (e) {
      return null;
    }
    if (id !== null && /^\d+$/.test(id)) {
      const seq = Number(id);
      if (seq <= state.lastSeq) return null; // seen already
      state.lastSeq = seq;
    }
    if (kind === "end") {
      refreshRun();
      refreshApprovals();
      loadFiles();
      loadRuns();
      return "end";
    }
    show(event);
    return null;
  }

  // -- the timeline -----------------------------------------------------------------------------
  function stepCard(index) {
    let step = state.steps.get(index);
    if (step) return step;
    const card = el("li", "card step");
    const head = el("div", "step-head");
    head.appendChild(el("span", "step-index", `Step ${index}`));
    const time = el("span", "muted step-time");
    head.appendChild(time);
    card.appendChild(head);
    const body = el("div", "step-body");
    card.appendChild(body);
    const tools = el("ul", "tool-calls");
    step = { card, body, tools, time, approvals: new Map(), reply: null };
    state.steps.set(index, step);
    card.dataset.step = String(index);
    // In step order, whatever arrives first (a reloaded page asks for pending calls while the
    // stream is still replaying the earlier steps).
    const later = Array.from($("timeline").children).find((c) => c.dataset.step && Number(c.dataset.step) > index);
    $("timeline").insertBefore(card, later || null);
    return step;
  }

  function note(cls, text) {
    const item = el("li", `card note ${cls}`, text);
    $("timeline").appendChild(item);
    return item;
  }

  function show(event) {
    switch (event.kind) {
      case "run_started":
        break;
      case "run_resumed":
        note("resumed", "Resumed");
        break;
      case "plan_updated":
        note("plan", event.plan || event.text || json(event));
        break;
      case "model_replied": {
        const step = stepCard(event.step);
        step.reply = event.text;
        break;
      }
      case "action_parsed": {
        const step = stepCard(event.step);
        if (event.thought) step.body.appendChild(el("p", "thought", event.thought));
        step.body.appendChild(codeBlock(event.code || ""));
        if (event.note) step.body.appendChild(el("p", "muted", event.note));
        step.body.appendChild(step.tools);
        break;
      }
      case "approval_requested":
        showApproval(stepCard(event.step), event);
        watchApprovals();
        break;
      case "approval_decided":
        decided(event);
        refreshApprovals();
        break;
      case "tool_called":
        showToolCall(stepCard(event.step), event.call || {});
        break;
      case "observed": {
        const step = stepCard(event.step);
        if (!step.body.querySelector("pre.code") && step.reply) step.body.appendChild(el("pre", "reply", step.reply));
        const box = el("div", "observation");
        box.appendChild(el("span", "label", "Observation"));
        box.appendChild(el("pre", event.error ? "error" : "", event.observation || ""));
        const images = (event.execution && event.execution.images) || [];
        for (const image of images.slice(0, 20)) showImage(box, image);
        step.body.appendChild(box);
        break;
      }
      case "step_finished": {
        const step = stepCard(event.step.index);
        if (!step.body.childNodes.length && event.step.reply) step.body.appendChild(el("pre", "reply", event.step.reply));
        const total = (event.step.model_seconds || 0) + (event.step.exec_seconds || 0);
        const usage = event.step.usage || {};
        step.time.textContent = `${seconds(total)} · ${(usage.prompt_tokens || 0) + (usage.completion_tokens || 0)} tokens`;
        step.card.classList.add("done");
        refreshRun();
        break;
      }
      case "files_changed":
        loadFiles();
        break;
      case "budget_hit":
      case "log_note":
        note("warn", event.message || event.kind);
        break;
      case "run_finished": {
        const card = note(`answer ${event.status}`, "");
        card.appendChild(el("span", "label", event.status === "success" ? "Answer" : `Ended: ${event.status}`));
        const output = event.output;
        card.appendChild(el("pre", "", typeof output === "string" ? output : json(output)));
        if (event.error) card.appendChild(el("p", "error", event.error));
        break;
      }
      default:
        break;
    }
  }

  function showToolCall(step, call) {
    const item = el("li", call.error ? "tool-call failed" : "tool-call");
    const head = el("div", "tool-head");
    head.appendChild(el("code", "tool-name", call.name || "?"));
    head.appendChild(el("span", "muted", seconds(call.duration_s)));
    item.appendChild(head);
    item.appendChild(el("pre", "args", json(call.arguments)));
    item.appendChild(el("pre", call.error ? "error" : "result", call.error ? json(call.error) : json(call.result)));
    if (!step.tools.parentNode) step.body.appendChild(step.tools);
    step.tools.appendChild(item);
  }

  // An image the code showed (display()), as the log kept it: base64 of a checked PNG, JPEG, GIF
  // or WebP. It becomes a blob: URL of that type; nothing else is ever put in an img.
  function showImage(box, image) {
    const type = typeof image.mime === "string" ? image.mime : "";
    if (!Object.values(IMAGE_TYPES).includes(type) || typeof image.base64 !== "string") {
      box.appendChild(el("p", "muted", `[an image of ${image.width || "?"}x${image.height || "?"} was not kept in the log]`));
      return;
    }
    let bytes;
    try {
      const raw = atob(image.base64);
      bytes = new Uint8Array(raw.length);
      for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    } catch (e) {
      return;
    }
    const img = el("img", "preview");
    img.alt = `image ${image.width || "?"}x${image.height || "?"}`;
    img.src = URL.createObjectURL(new Blob([bytes], { type }));
    box.appendChild(img);
  }

  // -- approvals ------------------------------------------------------------------------------
  function showApproval(step, event) {
    if (step.approvals.has(event.request_id)) return step.approvals.get(event.request_id);
    const item = el("li", "tool-call approval");
    item.dataset.request = event.request_id;
    const head = el("div", "tool-head");
    head.appendChild(el("code", "tool-name", event.tool || "?"));
    head.appendChild(el("span", "badge waiting", "waiting for approval"));
    item.appendChild(head);
    if (event.reason) item.appendChild(el("p", "muted", event.reason));
    item.appendChild(el("pre", "args", json(event.arguments)));
    const verdict = el("p", "verdict");
    item.appendChild(verdict);
    if (!step.tools.parentNode) step.body.appendChild(step.tools);
    step.tools.appendChild(item);
    const entry = { item, head, verdict, buttons: null, decided: false };
    step.approvals.set(event.request_id, entry);
    return entry;
  }

  function decided(event) {
    for (const step of state.steps.values()) {
      const entry = step.approvals.get(event.request_id);
      if (!entry) continue;
      if (entry.buttons) entry.buttons.remove();
      entry.buttons = null;
      entry.decided = true;
      entry.item.classList.add("decided", `verdict-${event.verdict}`);
      const badge = entry.head.querySelector(".badge");
      if (badge) {
        badge.textContent = event.timed_out ? "timed out: denied" : event.verdict === "deny" ? "denied" : event.verdict === "edit" ? "approved with edits" : "approved";
        badge.className = `badge ${event.verdict}`;
      }
      entry.verdict.textContent = [event.by ? `by ${event.by}` : "", event.message || ""].filter(Boolean).join(": ");
    }
  }

  // The log can say a call waits a moment before the server's registry lists it: ask again
  // until every waiting call shown has its buttons (or has been decided).
  async function watchApprovals() {
    const runId = state.runId;
    if (state.watching === runId) return;
    state.watching = runId;
    try {
      for (let tries = 0; tries < 600 && runId === state.runId; tries++) {
        await refreshApprovals();
        const unanswered = Array.from(state.steps.values()).some((step) =>
          Array.from(step.approvals.values()).some((entry) => !entry.decided && !entry.buttons));
        if (!unanswered) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    } finally {
      if (state.watching === runId) state.watching = null;
    }
  }

  async function refreshApprovals() {
    const runId = state.runId;
    let pending;
    try {
      pending = await api("GET", `/api/approvals?run_id=${encodeURIComponent(runId)}`);
    } catch (e) {
      return;
    }
    if (runId !== state.runId) return;
    const waiting = new Set(pending.map((p) => p.id));
    for (const request of pending) {
      const step = stepCard(request.step || 0);
      const entry = showApproval(step, { request_id: request.id, tool: request.tool, arguments: request.arguments, reason: request.reason });
      if (!entry.buttons) entry.buttons = approvalButtons(request, entry);
    }
    for (const step of state.steps.values()) {
      for (const [id, entry] of step.approvals) {
        if (!waiting.has(id) && entry.buttons) {
          entry.buttons.remove();
          entry.buttons = null;
        }
      }
    }
  }

  function approvalButtons(request, entry) {
    const box = el("div", "approval-actions");
    const message = el("input", "deny-message");
    message.placeholder = "Reason (for deny)";
    message.maxLength = 4000;
    const editor = el("textarea", "edit-args");
    editor.value = json(request.arguments);
    editor.hidden = true;
    editor.rows = 4;
    const approve = el("button", "approve", "Approve");
    const deny = el("button", "danger deny", "Deny");
    const edit = el("button", "edit", "Edit");
    for (const b of [approve, deny, edit]) b.type = "button";
    const error = el("p", "error");
    async function send(body) {
      error.textContent = "";
      try {
        await api("POST", `/api/approvals/${encodeURIComponent(request.id)}`, body);
        box.remove();
        entry.buttons = null;
      } catch (e) {
        error.textContent = e.message;
      }
    }
    approve.addEventListener("click", () => send({ verdict: "approve" }));
    deny.addEventListener("click", () => send({ verdict: "deny", message: message.value }));
    edit.addEventListener("click", () => {
      if (editor.hidden) {
        editor.hidden = false;
        edit.textContent = "Send edited";
        return;
      }
      let args;
      try {
        args = JSON.parse(editor.value);
      } catch (e) {
        error.textContent = "the arguments must be JSON";
        return;
      }
      send({ verdict: "edit", arguments: args });
    });
    box.append(approve, deny, edit, message, editor, error);
    entry.item.appendChild(box);
    return box;
  }

  // -- files ----------------------------------------------------------------------------------
  async function loadFiles() {
    const runId = state.runId;
    let files;
    try {
      files = await api("GET", `/api/runs/${encodeURIComponent(runId)}/files`);
    } catch (e) {
      return;
    }
    if (runId !== state.runId) return;
    const list = $("file-list");
    list.textContent = "";
    $("files-out").hidden = !files.length;
    for (const file of files) {
      const item = el("li", "file");
      const link = el("button", "link", file.path);
      link.type = "button";
      link.addEventListener("click", () => download(runId, file.path, false));
      item.appendChild(link);
      item.appendChild(el("span", "muted", `${file.size.toLocaleString()} bytes`));
      const type = IMAGE_TYPES[(file.path.split(".").pop() || "").toLowerCase()];
      if (type && file.size <= 4 * 1024 * 1024) preview(runId, file.path, type, item);
      list.appendChild(item);
    }
  }

  function filePath(runId, path) {
    return `/api/runs/${encodeURIComponent(runId)}/files/${path.split("/").map(encodeURIComponent).join("/")}`;
  }

  async function fetchFile(runId, path) {
    const response = await fetch(filePath(runId, path), { headers: { Authorization: `Bearer ${state.token}` } });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.arrayBuffer();
  }

  async function preview(runId, path, type, item) {
    try {
      const url = URL.createObjectURL(new Blob([await fetchFile(runId, path)], { type }));
      const img = el("img", "preview");
      img.alt = path;
      img.src = url;
      item.appendChild(img);
    } catch (e) {
      /* no preview */
    }
  }

  async function download(runId, path) {
    const url = URL.createObjectURL(new Blob([await fetchFile(runId, path)], { type: "application/octet-stream" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = path.split("/").pop() || "file";
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // -- actions --------------------------------------------------------------------------------
  async function cancelRun() {
    $("cancel").disabled = true;
    try {
      await api("POST", `/api/runs/${encodeURIComponent(state.runId)}/cancel`);
    } catch (e) {
      $("run-error").textContent = e.message;
    } finally {
      $("cancel").disabled = false;
      refreshRun();
    }
  }

  async function resumeRun() {
    $("resume").disabled = true;
    try {
      await api("POST", `/api/runs/${encodeURIComponent(state.runId)}/resume`, {});
      openRun(state.runId);
    } catch (e) {
      $("run-error").textContent = e.message;
    } finally {
      $("resume").disabled = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (e) => {
      e.preventDefault();
      signIn($("token").value.trim());
    });
    $("new-run").addEventListener("submit", startRun);
    $("cancel").addEventListener("click", cancelRun);
    $("resume").addEventListener("click", resumeRun);
    $("menu").addEventListener("click", () => document.body.classList.toggle("side-open"));
    const token = readToken();
    if (token) signIn(token);
    else signOut();
  });
})();
