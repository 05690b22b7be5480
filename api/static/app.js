/* Seeds QA chat page.
 *
 * Plain JavaScript, no build step, nothing fetched from outside this server.
 * Safety rule: text from the API or the user is only ever put on the page with
 * textContent / text nodes. This file never assigns innerHTML / outerHTML and never
 * calls insertAdjacentHTML or document.write.
 */
(() => {
  "use strict";

  const STORAGE_KEY = "seedsqa.conversation.v1";
  const API_KEY_STORAGE = "seedsqa.apiKey";
  const MAX_TURNS = 100;
  const TOP_K = 5;
  const CONTEXT_RADIUS = 3; // paragraphs shown before and after the cited one
  // Tests may shorten the time-out by defining window.SEEDSQA_TIMEOUT_MS before load.
  const TIMEOUT_MS = Number(window.SEEDSQA_TIMEOUT_MS) > 0 ? Number(window.SEEDSQA_TIMEOUT_MS) : 20000;

  const $ = (id) => document.getElementById(id);
  const conversationEl = $("conversation");
  const scroller = $("scroller");
  const intro = $("intro");
  const form = $("composer");
  const input = $("question");
  const sendButton = $("send");
  const charCount = $("char-count");
  const statusEl = $("status");
  const newButton = $("new-conversation");
  const sourceDialog = $("source-dialog");
  const sourceTitle = $("source-title");
  const sourceMeta = $("source-meta");
  const sourceBody = $("source-body");
  const sourceFoot = $("source-foot");
  const keyDialog = $("key-dialog");
  const keyInput = $("key-input");

  /** @type {Array<{id:string, question:string, status:string, response?:object, error?:object}>} */
  let turns = [];
  let pendingTurnId = null;
  let pendingController = null;
  let questionLimit = 2000;

  // ---------------------------------------------------------------- DOM helpers

  /** Create an element. `props` sets properties (className, type, ...), `attrs` in
   * props.attrs sets attributes; children are nodes or strings (made text nodes). */
  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [name, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (name === "attrs") {
          for (const [attr, attrValue] of Object.entries(value)) {
            if (attrValue !== undefined && attrValue !== null && attrValue !== false) {
              node.setAttribute(attr, String(attrValue));
            }
          }
        } else if (name === "on") {
          for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
        } else if (name === "text") {
          node.textContent = String(value);
        } else {
          node[name] = value;
        }
      }
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    }
    return node;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  const ICONS = {
    doc: ["M7 3.5h7l4 4V20a.5.5 0 0 1-.5.5h-10.5a.5.5 0 0 1-.5-.5V4a.5.5 0 0 1 .5-.5Z", "M14 3.5V8h4", "M9 12h6M9 15.5h6"],
    copy: ["M9 9h10v11H9z", "M5 15V4h10"],
    check: ["M5 12.5l4.5 4.5L19 7.5"],
    retry: ["M4 12a8 8 0 1 0 2.4-5.7", "M4 4v4.5h4.5"],
    edit: ["M4 20h4L19 9l-4-4L4 16z", "M13.5 6.5l4 4"],
    alert: ["M12 4 2.8 19.5h18.4z", "M12 10v4.5", "M12 17.2v.3"],
    info: ["M12 3.5a8.5 8.5 0 1 0 0 17a8.5 8.5 0 1 0 0-17z", "M12 11v5.5", "M12 7.8v.3"],
    key: ["M8 11a4 4 0 1 0 0 8a4 4 0 1 0 0-8z", "M11 12l8-8M16 7l2.5 2.5"],
    expand: ["M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5"],
  };

  function icon(name) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.classList.add("icon");
    for (const d of ICONS[name] || []) {
      const path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", d);
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", "currentColor");
      path.setAttribute("stroke-width", "1.8");
      path.setAttribute("stroke-linecap", "round");
      path.setAttribute("stroke-linejoin", "round");
      svg.appendChild(path);
    }
    return svg;
  }

  function announce(message) {
    statusEl.textContent = "";
    // A new text node on a later frame makes screen readers read it again.
    window.setTimeout(() => { statusEl.textContent = message; }, 30);
  }

  const formatScore = (score) => (typeof score === "number" && Number.isFinite(score) ? score.toFixed(2) : "–");
  const formatNumber = (n) => Number(n).toLocaleString("en-US");
  const citationLabel = (source, paragraph) => `${source} ¶${paragraph}`;

  function newId() {
    return `t${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
  }

  // ---------------------------------------------------------------- storage

  function loadTurns() {
    let data;
    try {
      data = JSON.parse(window.localStorage.getItem(STORAGE_KEY) || "null");
    } catch {
      return [];
    }
    if (!data || !Array.isArray(data.turns)) return [];
    return data.turns
      .filter((t) => t && typeof t.question === "string" && typeof t.id === "string")
      .map((t) => {
        if (t.status === "done" && t.response && typeof t.response === "object") return t;
        if (t.status === "error" && t.error && typeof t.error === "object") return t;
        // Asked but never answered: the page was closed or reloaded while it waited.
        return {
          id: t.id,
          question: t.question,
          status: "error",
          error: {
            kind: "interrupted",
            title: "No answer yet",
            message: "The page was reloaded before the answer arrived. Ask again with Retry.",
          },
        };
      });
  }

  function saveTurns() {
    const kept = turns.slice(-MAX_TURNS);
    try {
      window.localStorage.setItem(STORAGE_KEY, JSON.stringify({ version: 1, turns: kept }));
    } catch {
      // Storage full or disabled: the conversation still works, it just won't survive a reload.
    }
  }

  function getApiKey() {
    try {
      return window.localStorage.getItem(API_KEY_STORAGE) || "";
    } catch {
      return "";
    }
  }

  // ---------------------------------------------------------------- HTTP

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  function apiHeaders(extra) {
    const headers = { Accept: "application/json", ...(extra || {}) };
    const key = getApiKey();
    if (key) headers.Authorization = `Bearer ${key}`;
    return headers;
  }

  async function readError(response) {
    let code = "http_error";
    let message = `The server answered ${response.status} ${response.statusText || ""}`.trim() + ".";
    try {
      const data = await response.json();
      if (data && data.error && typeof data.error.message === "string") {
        message = data.error.message;
        if (typeof data.error.code === "string") code = data.error.code;
      }
    } catch {
      // Not JSON (a proxy error page, say): keep the generic message.
    }
    return new ApiError(response.status, code, message);
  }

  function describeError(err, timedOut) {
    if (timedOut) {
      return {
        kind: "timeout",
        title: "The server took too long",
        message: `No answer after ${Math.round(TIMEOUT_MS / 1000)} seconds. It may be busy; try again.`,
      };
    }
    if (err instanceof ApiError) {
      const titles = {
        400: "The request was not accepted",
        401: "This server needs an API key",
        404: "Not found on the server",
        413: "The question is too long",
        422: "The question can't be asked as written",
        503: "The server is busy",
      };
      const title = titles[err.status] || (err.status >= 500 ? "The server had a problem" : "The request was not accepted");
      return { kind: "http", status: err.status, code: err.code, title, message: err.message };
    }
    if (err && err.name === "AbortError") {
      return { kind: "aborted", title: "Cancelled", message: "The question was cancelled." };
    }
    if (err instanceof SyntaxError || (err && err.kind === "bad_response")) {
      return { kind: "bad_response", title: "Unexpected answer from the server", message: "The server's reply could not be read." };
    }
    return {
      kind: "network",
      title: "Can't reach the server",
      message: "Check your connection, or that the server is running, then retry.",
    };
  }

  function validResponse(data) {
    return data && typeof data === "object" && Array.isArray(data.citations)
      && (data.answer === null || typeof data.answer === "string");
  }

  async function ask(turn) {
    if (pendingTurnId) return;
    turn.status = "pending";
    delete turn.error;
    delete turn.response;
    pendingTurnId = turn.id;
    setBusy(true);
    renderTurnReply(turn);
    saveTurns();
    scrollToBottom();
    announce("Searching the articles…");

    const controller = new AbortController();
    pendingController = controller;
    let timedOut = false;
    const timer = window.setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, TIMEOUT_MS);

    try {
      const response = await fetch("ask", {
        method: "POST",
        headers: apiHeaders({ "Content-Type": "application/json" }),
        body: JSON.stringify({ question: turn.question, top_k: TOP_K }),
        signal: controller.signal,
        cache: "no-store",
      });
      if (!response.ok) throw await readError(response);
      const data = await response.json();
      if (!validResponse(data)) throw Object.assign(new Error("bad response"), { kind: "bad_response" });
      turn.status = "done";
      turn.response = data;
    } catch (err) {
      turn.status = "error";
      turn.error = describeError(err, timedOut);
    } finally {
      window.clearTimeout(timer);
    }

    if (pendingController !== controller) return; // the conversation was cleared meanwhile
    pendingController = null;
    pendingTurnId = null;
    setBusy(false);
    if (!turns.includes(turn)) return;
    saveTurns();
    const node = renderTurnReply(turn);
    revealTurn(node);
    if (turn.status === "done") {
      announce(turn.response.answer ? "Answer received." : "The articles don't answer this.");
    } else {
      announce(`${turn.error.title}. ${turn.error.message}`);
    }
    if (turn.error && turn.error.status === 401) openKeyDialog();
  }

  // ---------------------------------------------------------------- rendering

  function renderAll() {
    conversationEl.replaceChildren(...turns.map(renderTurn));
    updateIntro();
  }

  function updateIntro() {
    const empty = turns.length === 0;
    intro.hidden = !empty;
    document.body.classList.toggle("is-empty", empty);
    newButton.disabled = empty && !pendingTurnId;
  }

  const LONG_QUESTION = 400;

  function renderTurn(turn) {
    const long = turn.question.length > LONG_QUESTION || turn.question.split("\n").length > 8;
    const bubble = h("p", { className: `question-bubble${long ? " is-clamped" : ""}`, attrs: { "data-role": "question" } },
      h("span", { className: "visually-hidden", text: "You asked: " }),
      turn.question);
    let toggle = null;
    if (long) {
      toggle = h("button", { type: "button", className: "btn btn-link question-toggle", text: "Show the whole question",
        attrs: { "aria-expanded": "false" } });
      toggle.addEventListener("click", () => {
        const clamped = bubble.classList.toggle("is-clamped");
        toggle.textContent = clamped ? "Show the whole question" : "Show less";
        toggle.setAttribute("aria-expanded", clamped ? "false" : "true");
      });
    }
    return h("article", { className: "turn", attrs: { "data-turn-id": turn.id, "aria-label": "Question and answer" } },
      h("div", { className: "question-row" }, bubble, toggle),
      renderReply(turn));
  }

  function renderTurnReply(turn) {
    const node = conversationEl.querySelector(`[data-turn-id="${CSS.escape(turn.id)}"]`);
    if (!node) {
      const fresh = renderTurn(turn);
      conversationEl.appendChild(fresh);
      updateIntro();
      return fresh;
    }
    node.lastElementChild.replaceWith(renderReply(turn));
    return node;
  }

  function renderReply(turn) {
    if (turn.status === "pending") {
      return h("div", { className: "reply reply-pending", attrs: { "data-state": "searching" } },
        h("span", { className: "spinner", attrs: { "aria-hidden": "true" } }),
        h("span", { className: "searching-text", text: "Searching the articles…" }));
    }
    if (turn.status === "error") return renderError(turn);
    const data = turn.response;
    return data.answer ? renderAnswer(data) : renderNoAnswer(data);
  }

  function renderAnswer(data) {
    const citations = data.citations || [];
    const first = citations[0];
    const src = data.answer_source || (first && { source: first.source, paragraph: first.paragraph });
    const highlight = data.answer_source
      ? { start: data.answer_source.start, end: data.answer_source.end, text: data.answer }
      : { text: data.answer };

    const quote = h("figure", { className: "quote quote-answer" },
      h("blockquote", { className: "quote-text", attrs: { "data-role": "answer" } }, data.answer),
      h("figcaption", { className: "quote-foot" },
        src ? h("span", { className: "quote-from" },
          h("span", { className: "quote-from-label", text: "From" }),
          citationChip({ source: src.source, paragraph: src.paragraph, score: first && first.score,
            highlight, primary: true })) : null));

    const head = h("div", { className: "reply-head" },
      h("span", { className: "badge badge-answer" }, icon("check"), "Answer"),
      h("span", { className: "reply-meta" }, "Quoted word for word",
        typeof data.confidence === "number"
          ? h("span", { className: "confidence", attrs: { title: "How confident the system is that this passage answers the question (0 to 1)" } },
            ` · confidence ${formatScore(data.confidence)}`) : null),
      copyButton(() => quoteForClipboard(data.answer, src), "Copy the answer with its source"));

    return h("div", { className: "reply reply-answer", attrs: { "data-state": "answer" } },
      head, quote, renderSources(citations, highlight, "Sources"));
  }

  function renderNoAnswer(data) {
    const citations = data.citations || [];
    return h("div", { className: "reply reply-none", attrs: { "data-state": "no-answer" } },
      h("div", { className: "reply-head" },
        h("span", { className: "badge badge-none" }, icon("info"), "No answer")),
      h("p", { className: "none-title", attrs: { "data-role": "no-answer" }, text: "The articles don't answer this." }),
      citations.length
        ? [h("p", { className: "none-sub", text: "These are the closest passages, in case they help:" }),
          renderPassages(citations, null, 2)]
        : h("p", { className: "none-sub", text: "No passage came close. Try other words, or a more specific question." }));
  }

  function renderSources(citations, highlight, title) {
    if (!citations.length) return null;
    const chips = h("ul", { className: "chips", attrs: { "aria-label": "Cited paragraphs" } },
      citations.map((c, i) => h("li", { className: "chip-item" },
        citationChip({ source: c.source, paragraph: c.paragraph, score: c.score,
          highlight: i === 0 ? highlight : null }),
        alsoIn(c.also_in, i === 0 ? highlight : null))));
    const details = h("details", { className: "passages-toggle" },
      h("summary", null, `Read the ${citations.length === 1 ? "cited passage" : `${citations.length} cited passages`}`),
      renderPassages(citations, highlight, Infinity));
    return h("section", { className: "sources" },
      h("h3", { className: "sources-title" }, title,
        h("span", { className: "sources-count", text: ` · ${citations.length} ${citations.length === 1 ? "paragraph" : "paragraphs"}` })),
      chips, details);
  }

  function renderPassages(citations, highlight, visible) {
    const list = h("ol", { className: "passages" });
    citations.forEach((c, i) => {
      const item = h("li", { className: "passage", hidden: i >= visible },
        h("blockquote", { className: "passage-text" }, c.text),
        h("div", { className: "passage-foot" },
          citationChip({ source: c.source, paragraph: c.paragraph, score: c.score,
            highlight: i === 0 ? highlight : null }),
          alsoIn(c.also_in, i === 0 ? highlight : null),
          copyButton(() => quoteForClipboard(c.text, c), "Copy this passage with its source")));
      list.appendChild(item);
    });
    const hiddenCount = Math.max(0, citations.length - visible);
    if (hiddenCount > 0 && Number.isFinite(visible)) {
      const more = h("button", {
        type: "button", className: "btn btn-link more-passages",
        text: `Show ${hiddenCount} more ${hiddenCount === 1 ? "passage" : "passages"}`,
      });
      more.addEventListener("click", () => {
        const firstHidden = list.querySelector(".passage[hidden]");
        list.querySelectorAll(".passage[hidden]").forEach((li) => { li.hidden = false; });
        more.remove();
        const chip = firstHidden && firstHidden.querySelector(".chip");
        if (chip) chip.focus();
      });
      return h("div", { className: "passages-wrap" }, list, more);
    }
    return list;
  }

  // A folded duplicate holds the same words at other offsets: find the answer by its text.
  function alsoIn(refs, highlight) {
    if (!Array.isArray(refs) || refs.length === 0) return null;
    return h("span", { className: "also-in" },
      h("span", { className: "also-in-label", text: "also in" }),
      refs.map((r) => citationChip({ source: r.source, paragraph: r.paragraph, small: true,
        highlight: highlight && highlight.text ? { text: highlight.text } : null })));
  }

  function citationChip({ source, paragraph, score, highlight, primary, small }) {
    const label = citationLabel(source, paragraph);
    const aria = `Open ${source}, paragraph ${paragraph}, in context`
      + (typeof score === "number" ? ` (score ${formatScore(score)})` : "");
    const chip = h("button", {
      type: "button",
      className: `chip${primary ? " chip-primary" : ""}${small ? " chip-small" : ""}`,
      title: `Open ${label} in context`,
      attrs: { "aria-label": aria, "aria-haspopup": "dialog", "data-source": source, "data-paragraph": paragraph },
    },
    icon("doc"),
    h("span", { className: "chip-label", text: label }),
    typeof score === "number" ? h("span", { className: "chip-score", attrs: { "aria-hidden": "true" }, text: formatScore(score) }) : null);
    chip.addEventListener("click", () => openSource({ source, paragraph, highlight, trigger: chip }));
    return chip;
  }

  function renderError(turn) {
    const err = turn.error || {};
    const retry = h("button", { type: "button", className: "btn btn-primary btn-small retry", disabled: Boolean(pendingTurnId) },
      icon("retry"), "Retry");
    retry.addEventListener("click", () => {
      ask(turn);
      input.focus();
    });
    const edit = h("button", { type: "button", className: "btn btn-ghost btn-small edit-question" }, icon("edit"), "Edit question");
    edit.addEventListener("click", () => {
      input.value = turn.question;
      autosize();
      input.focus();
      input.setSelectionRange(input.value.length, input.value.length);
    });
    const actions = [retry, edit];
    if (err.status === 401) {
      const key = h("button", { type: "button", className: "btn btn-ghost btn-small" }, icon("key"), "Enter API key");
      key.addEventListener("click", openKeyDialog);
      actions.push(key);
    }
    return h("div", { className: "reply reply-error", attrs: { "data-state": "error" } },
      h("div", { className: "error-head" }, icon("alert"),
        h("p", { className: "error-title", text: err.title || "Something went wrong" })),
      h("p", { className: "error-message", attrs: { "data-role": "error-message" }, text: err.message || "" }),
      err.status ? h("p", { className: "error-code", text: `HTTP ${err.status}${err.code ? ` · ${err.code}` : ""}` }) : null,
      h("div", { className: "error-actions" }, actions));
  }

  function quoteForClipboard(text, ref) {
    return ref ? `“${text}”\n— ${citationLabel(ref.source, ref.paragraph)}` : text;
  }

  function copyButton(getText, label) {
    const button = h("button", { type: "button", className: "btn btn-ghost btn-small copy", attrs: { "aria-label": label } },
      icon("copy"), h("span", { className: "copy-label", text: "Copy" }));
    button.addEventListener("click", async () => {
      const ok = await copyText(getText());
      const labelEl = button.querySelector(".copy-label");
      labelEl.textContent = ok ? "Copied" : "Copy failed";
      button.classList.toggle("is-done", ok);
      announce(ok ? "Copied to the clipboard." : "Could not copy.");
      window.setTimeout(() => {
        labelEl.textContent = "Copy";
        button.classList.remove("is-done");
      }, 1800);
    });
    return button;
  }

  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Fallback for browsers that refuse the async clipboard API.
      const area = h("textarea", { className: "clipboard-helper", value: text, attrs: { readonly: "", "aria-hidden": "true" } });
      document.body.appendChild(area);
      area.select();
      let ok = false;
      try {
        ok = document.execCommand("copy");
      } catch {
        ok = false;
      }
      area.remove();
      return ok;
    }
  }

  function setBusy(busy) {
    sendButton.disabled = busy;
    sendButton.setAttribute("aria-label", busy ? "Searching…" : "Send question");
    form.setAttribute("aria-busy", busy ? "true" : "false");
    document.body.classList.toggle("is-busy", busy);
    conversationEl.querySelectorAll(".retry").forEach((b) => { b.disabled = busy; });
    document.querySelectorAll(".example").forEach((b) => { b.disabled = busy; });
    updateIntro();
  }

  function scrollToBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  // Show a new answer: all of it when it fits, otherwise from its question down.
  function revealTurn(node) {
    if (!node) return;
    if (node.offsetHeight <= scroller.clientHeight - 24) {
      scrollToBottom();
      return;
    }
    // Too tall to show whole: start at the reply, with the end of the question above it.
    const reply = node.querySelector(".reply") || node;
    const top = reply.getBoundingClientRect().top - scroller.getBoundingClientRect().top;
    scroller.scrollTop += top - 56;
  }

  // ---------------------------------------------------------------- source viewer

  const sourceCache = new Map(); // name -> Promise of GET /sources/{name}

  function fetchSource(name) {
    if (!sourceCache.has(name)) {
      const path = name.split("/").map(encodeURIComponent).join("/");
      const promise = (async () => {
        const controller = new AbortController();
        const timer = window.setTimeout(() => controller.abort(), TIMEOUT_MS);
        try {
          const response = await fetch(`sources/${path}`, { headers: apiHeaders(), signal: controller.signal });
          if (!response.ok) throw await readError(response);
          const data = await response.json();
          if (!data || !Array.isArray(data.paragraphs)) throw Object.assign(new Error("bad response"), { kind: "bad_response" });
          return data;
        } finally {
          window.clearTimeout(timer);
        }
      })();
      sourceCache.set(name, promise);
      promise.catch(() => sourceCache.delete(name)); // failures are not cached
    }
    return sourceCache.get(name);
  }

  let sourceRequest = 0;

  async function openSource({ source, paragraph, highlight }) {
    const request = ++sourceRequest;
    sourceTitle.textContent = source;
    sourceMeta.textContent = `Paragraph ${paragraph}`;
    sourceBody.replaceChildren(h("p", { className: "sheet-loading" },
      h("span", { className: "spinner", attrs: { "aria-hidden": "true" } }), "Loading the article…"));
    sourceFoot.replaceChildren();
    if (!sourceDialog.open) sourceDialog.showModal();
    document.body.classList.add("has-dialog");

    let doc;
    try {
      doc = await fetchSource(source);
    } catch (err) {
      if (request !== sourceRequest) return;
      const info = describeError(err, false);
      const retry = h("button", { type: "button", className: "btn btn-primary btn-small" }, icon("retry"), "Retry");
      retry.addEventListener("click", () => openSource({ source, paragraph, highlight }));
      sourceBody.replaceChildren(h("div", { className: "reply-error sheet-error" },
        h("div", { className: "error-head" }, icon("alert"), h("p", { className: "error-title", text: info.title })),
        h("p", { className: "error-message", text: info.message }),
        h("div", { className: "error-actions" }, retry)));
      retry.focus();
      return;
    }
    if (request !== sourceRequest || !sourceDialog.open) return;
    renderSource(doc, paragraph, highlight, false);
  }

  function renderSource(doc, paragraph, highlight, full) {
    const paras = doc.paragraphs;
    const index = paras.findIndex((p) => p.paragraph === paragraph);
    const target = paras[index];
    if (!target) {
      sourceMeta.textContent = `Paragraph ${paragraph} is not in this file any more.`;
      sourceBody.replaceChildren(h("p", { className: "sheet-loading", text: "The index may have been rebuilt since this answer. Ask the question again." }));
      return;
    }
    sourceMeta.textContent = `Paragraph ${paragraph} of ${paras.length} · characters ${formatNumber(target.start)}–${formatNumber(target.end)}`;

    const from = full ? 0 : Math.max(0, index - CONTEXT_RADIUS);
    const to = full ? paras.length : Math.min(paras.length, index + CONTEXT_RADIUS + 1);
    const article = h("div", { className: "article" });
    if (from > 0) article.appendChild(h("p", { className: "article-gap", text: `${from} earlier ${from === 1 ? "paragraph" : "paragraphs"}` }));
    let targetNode = null;
    for (let i = from; i < to; i += 1) {
      const p = paras[i];
      const isTarget = i === index;
      const textNode = h("span", { className: "para-text" });
      if (isTarget && highlight) appendHighlighted(textNode, p, highlight);
      else textNode.textContent = p.text;
      const node = h("div", {
        className: `para para-${p.kind === "heading" || p.kind === "noise" ? p.kind : "body"}${isTarget ? " is-target" : ""}`,
        attrs: { "data-paragraph": p.paragraph, "aria-current": isTarget ? "true" : null },
      },
      h("span", { className: "para-num", attrs: { "aria-label": `Paragraph ${p.paragraph}` }, text: `¶${p.paragraph}` }),
      textNode);
      if (isTarget) targetNode = node;
      article.appendChild(node);
    }
    const after = paras.length - to;
    if (after > 0) article.appendChild(h("p", { className: "article-gap", text: `${after} later ${after === 1 ? "paragraph" : "paragraphs"}` }));
    sourceBody.replaceChildren(article);

    const toggle = h("button", { type: "button", className: "btn btn-ghost btn-small" },
      icon("expand"), full ? "Show less" : "Show the whole article");
    toggle.addEventListener("click", () => {
      renderSource(doc, paragraph, highlight, !full);
      const again = sourceFoot.querySelector("button");
      if (again) again.focus();
    });
    const everything = from === 0 && to === paras.length;
    sourceFoot.replaceChildren(
      everything && !full ? "" : toggle,
      h("span", { className: "spacer" }),
      copyButton(() => quoteForClipboard(target.text, { source: doc.source, paragraph }), "Copy this paragraph with its source"),
    );

    if (targetNode) {
      const mark = targetNode.querySelector("mark");
      (mark || targetNode).scrollIntoView({ block: "center" });
    }
  }

  /** Put `p.text` into `container` with the answer span wrapped in <mark>. Offsets from the
   * API count Unicode code points in the file text; JavaScript strings count UTF-16 units,
   * so the paragraph is split into code points before slicing. */
  function appendHighlighted(container, p, highlight) {
    const points = Array.from(p.text);
    let startUnit = -1;
    let endUnit = -1;
    if (Number.isInteger(highlight.start) && Number.isInteger(highlight.end)) {
      const s = highlight.start - p.start;
      const e = highlight.end - p.start;
      if (s >= 0 && e <= points.length && s < e) {
        const text = points.slice(s, e).join("");
        if (!highlight.text || text === highlight.text) {
          startUnit = points.slice(0, s).join("").length;
          endUnit = startUnit + text.length;
        }
      }
    }
    if (startUnit < 0 && highlight.text) {
      const found = p.text.indexOf(highlight.text);
      if (found >= 0) {
        startUnit = found;
        endUnit = found + highlight.text.length;
      }
    }
    if (startUnit < 0) {
      container.textContent = p.text;
      return;
    }
    append(container, [
      p.text.slice(0, startUnit),
      h("mark", { className: "answer-mark", text: p.text.slice(startUnit, endUnit) }),
      p.text.slice(endUnit),
    ]);
  }

  function closeDialog(dialog) {
    if (dialog.open) dialog.close();
  }

  sourceDialog.addEventListener("close", () => {
    sourceRequest += 1;
    document.body.classList.remove("has-dialog");
  });
  $("source-close").addEventListener("click", () => closeDialog(sourceDialog));
  for (const dialog of [sourceDialog, keyDialog]) {
    // A click on the backdrop (outside the sheet's box) closes it.
    dialog.addEventListener("click", (event) => {
      if (event.target !== dialog) return;
      const r = dialog.getBoundingClientRect();
      const inside = event.clientX >= r.left && event.clientX <= r.right && event.clientY >= r.top && event.clientY <= r.bottom;
      if (!inside) closeDialog(dialog);
    });
  }

  // ---------------------------------------------------------------- API key dialog

  function openKeyDialog() {
    keyInput.value = getApiKey();
    if (!keyDialog.open) keyDialog.showModal();
    keyInput.focus();
  }

  $("key-button").addEventListener("click", openKeyDialog);
  $("key-cancel").addEventListener("click", () => closeDialog(keyDialog));
  $("key-clear").addEventListener("click", () => {
    try { window.localStorage.removeItem(API_KEY_STORAGE); } catch { /* ignore */ }
    sourceCache.clear();
    announce("API key forgotten.");
    closeDialog(keyDialog);
  });
  $("key-form").addEventListener("submit", () => {
    const value = keyInput.value.trim();
    try {
      if (value) window.localStorage.setItem(API_KEY_STORAGE, value);
      else window.localStorage.removeItem(API_KEY_STORAGE);
    } catch { /* ignore */ }
    sourceCache.clear();
    announce(value ? "API key saved." : "API key forgotten.");
  });
  keyDialog.addEventListener("close", () => input.focus());

  // ---------------------------------------------------------------- composer

  function autosize() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
    const n = input.value.length;
    if (n > questionLimit * 0.9) {
      charCount.textContent = `${formatNumber(n)} / ${formatNumber(questionLimit)}`;
      charCount.classList.toggle("over", n > questionLimit);
    } else {
      charCount.textContent = "";
      charCount.classList.remove("over");
    }
  }

  function submitQuestion(text) {
    const question = (text ?? input.value).trim();
    if (!question || pendingTurnId) {
      input.focus();
      return;
    }
    const turn = { id: newId(), question, status: "pending" };
    turns.push(turn);
    if (turns.length > MAX_TURNS) {
      turns = turns.slice(-MAX_TURNS);
      renderAll();
    }
    input.value = "";
    autosize();
    ask(turn);
    input.focus();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitQuestion();
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && !event.altKey) {
      event.preventDefault();
      submitQuestion();
    }
  });
  input.addEventListener("input", autosize);

  document.querySelectorAll(".example").forEach((button) => {
    button.addEventListener("click", () => submitQuestion(button.textContent));
  });

  newButton.addEventListener("click", () => {
    if (pendingController) pendingController.abort();
    pendingController = null;
    pendingTurnId = null;
    setBusy(false);
    turns = [];
    saveTurns();
    renderAll();
    announce("New conversation started.");
    input.focus();
  });

  // ---------------------------------------------------------------- start

  async function loadHealth() {
    try {
      const response = await fetch("health", { headers: { Accept: "application/json" }, cache: "no-store" });
      if (!response.ok) return;
      const data = await response.json();
      const docs = data && data.counts && data.counts.documents;
      if (Number.isInteger(docs)) {
        const articles = `${formatNumber(docs)} ${docs === 1 ? "article" : "articles"}`;
        $("corpus-status").textContent = `Answers quoted word for word from ${articles}`;
        $("corpus-status-short").textContent = `Quotes from ${articles}`;
      }
    } catch {
      // The page still works; the first question will show the connection error.
    }
  }

  turns = loadTurns();
  saveTurns();
  renderAll();
  setBusy(false);
  autosize();
  scrollToBottom();
  input.focus();
  loadHealth();
  // Scroll again once fonts and layout settle, so the newest answer is in view.
  window.requestAnimationFrame(scrollToBottom);
})();
