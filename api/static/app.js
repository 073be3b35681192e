// The chat page: asks /api/answer, shows cited answers, opens citations in the report beside the chat,
// and lists the documents (adding and removing them when the server allows it, with the build status).
//
// Every piece of text that comes from the server (answers, passages, the report itself) is put into
// the page as text nodes (textContent / createTextNode), never parsed as HTML: a report or a question
// containing markup must show up as characters, not run.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const thread = $("thread");
  const scroller = $("scroller");
  const welcome = $("welcome");
  const form = $("composer");
  const input = $("question");
  const send = $("send");
  const report = $("report");
  const reportTitle = $("report-title");
  const reportMeta = $("report-meta");
  const reportEyebrow = $("report-eyebrow");
  const reportBody = $("report-body");
  const announcer = $("announcer");
  const library = $("library");
  const libraryToggle = $("library-toggle");
  const libraryStatus = $("library-status");
  const docList = $("doc-list");
  const uploadForm = $("upload-form");
  const uploadFile = $("upload-file");
  const uploadNote = $("upload-note");
  const uploadError = $("upload-error");
  const uploadList = $("upload-list");
  const dropOverlay = $("drop-overlay");
  const buildDot = $("build-dot");
  const filterNote = $("filter-note");

  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  const documents = new Map(); // doc_id -> Promise of the document, fetched once
  let history = []; // earlier {role, content} turns, sent with each question for follow-ups
  let busy = false;
  let openedBy = null; // the chip that opened the report, to return focus to on close
  let config = { uploads: false, max_upload_bytes: 0, accepted_kinds: [] }; // GET /api/config
  let known = []; // the documents the index serves, as GET /api/documents lists them
  const excluded = new Set(); // ids of documents unticked in the panel: questions leave them out
  let polling = null; // the timer that follows a build
  let rebuilding = false; // a build was seen running: list the documents again when it ends
  const uploads = []; // the files sent from this page, in order: see queueFiles()
  let uploading = false; // one file goes up at a time; the others wait in the list

  // ------------------------------------------------------------------------------ DOM helpers

  // el("p", {class: "x"}, "text", childNode): attributes by setAttribute, children as nodes or text.
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  function announce(message) {
    // Cleared first so that the same message twice is announced twice.
    announcer.textContent = "";
    window.setTimeout(() => { announcer.textContent = message; }, 50);
  }

  function scrollThreadToEnd() {
    scroller.scrollTo({ top: scroller.scrollHeight, behavior: reducedMotion.matches ? "auto" : "smooth" });
  }

  // -------------------------------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(message, status = 0) {
      super(message);
      this.status = status; // the HTTP status, 0 when the server was not reached
    }
  }

  async function api(path, body) {
    return request(path, body === undefined ? { headers: { Accept: "application/json" } } : {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  }

  async function request(path, options) {
    let response;
    try {
      response = await fetch(path, options);
    } catch (err) {
      throw new ApiError("The server could not be reached. Check that it is running and try again.");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const message = data && data.error && data.error.message;
      throw new ApiError(message || `The server answered ${response.status} ${response.statusText}.`,
        response.status);
    }
    return data;
  }

  // POST to a streaming route: calls onToken(text) for each piece an LLM writes, resolves to the
  // final answer object. Errors before the stream (4xx/5xx JSON) throw ApiError like api().
  async function apiStream(path, body, onToken) {
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
        body: JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError("The server could not be reached. Check that it is running and try again.");
    }
    if (!response.ok || !response.body) {
      let data = null;
      try {
        data = await response.json();
      } catch (err) {
        data = null;
      }
      const message = data && data.error && data.error.message;
      throw new ApiError(message || `The server answered ${response.status} ${response.statusText}.`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    let answer = null;
    const handle = (line) => {
      if (!line.trim()) return;
      const event = JSON.parse(line);
      if (event.type === "token") onToken(event.text);
      else if (event.type === "answer") answer = event.answer;
    };
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += decoder.decode(value, { stream: true });
        let newline;
        while ((newline = buffered.indexOf("\n")) >= 0) {
          handle(buffered.slice(0, newline));
          buffered = buffered.slice(newline + 1);
        }
      }
      handle(buffered + decoder.decode());
    } catch (err) {
      throw new ApiError("The answer was cut off. Try again.");
    }
    if (!answer) throw new ApiError("The answer was cut off. Try again.");
    return answer;
  }

  function loadDocument(docId) {
    if (!documents.has(docId)) {
      const pending = api(`/api/documents/${encodeURIComponent(docId)}`);
      pending.catch(() => documents.delete(docId)); // let a later click retry
      documents.set(docId, pending);
    }
    return documents.get(docId);
  }

  // ----------------------------------------------------------------------------- the thread

  function addUserMessage(question) {
    const item = el("li", { class: "message user" },
      el("div", { class: "bubble" },
        el("h3", { class: "visually-hidden" }, "You asked"),
        el("p", { class: "text" }, question)));
    thread.append(item);
    return item;
  }

  function addPendingMessage() {
    const item = el("li", { class: "message assistant pending" },
      el("div", { class: "avatar", "aria-hidden": "true" }, "FQ"),
      el("div", { class: "bubble" },
        el("p", { class: "text" },
          el("span", { class: "dots", "aria-hidden": "true" }, el("span"), el("span"), el("span")),
          " Searching the report…")));
    thread.append(item);
    return item;
  }

  // The supporting sentence of a citation, cut from its passage (highlight offsets index the document).
  function sentenceOf(citation) {
    const from = citation.highlight.start - citation.start;
    const to = citation.highlight.end - citation.start;
    if (from < 0 || to > citation.text.length || from >= to) return citation.text;
    return citation.text.slice(from, to);
  }

  // "p. 3" for a citation of a paged document (PDF), "" otherwise.
  function pageLabel(citation) {
    return Number.isInteger(citation.page) ? `p. ${citation.page}` : "";
  }

  // `named`: the answer cites several documents, so each chip says which one it is from.
  function citationChip(citation, answerable, named) {
    const sentence = sentenceOf(citation);
    const page = pageLabel(citation);
    const where = named ? `${citation.title}, ${citation.section}` : citation.section;
    const chip = el("button", {
      type: "button",
      class: "chip" + (answerable ? "" : " muted"),
      "data-n": citation.n,
      "data-doc": citation.doc_id,
      title: sentence,
      "aria-label": `Citation ${citation.n}: ${where}${page ? `, page ${citation.page}` : ""}.`
        + " Open it in the report.",
    },
    el("span", { class: "chip-n", "aria-hidden": "true" }, String(citation.n)),
    named ? el("span", { class: "chip-doc", "aria-hidden": "true" }, citation.title) : null,
    // The page first: a long section title is cut short with an ellipsis, the page never is.
    el("span", { class: "chip-label", "aria-hidden": "true" }, (page ? `${page} · ` : "") + citation.section));
    chip.addEventListener("click", () => openCitation(citation, chip));
    return chip;
  }

  // Appends `quote` to `parent`, with the citation's short answer (when it has one) in bold.
  function appendQuote(parent, quote, citation) {
    const short = citation && citation.short_answer ? citation.short_answer.text : "";
    const at = short ? quote.lastIndexOf(short) : -1;
    if (at < 0) {
      parent.append(document.createTextNode(quote));
      return;
    }
    parent.append(document.createTextNode(quote.slice(0, at)),
      el("strong", { class: "short-answer" }, short),
      document.createTextNode(quote.slice(at + short.length)));
  }

  // Answer text with its "[n]" markers turned into small buttons that open citation n; the short
  // answer of each quoted sentence, where the reader found one, is shown in bold.
  function answerParagraph(text, chips, citations) {
    const paragraph = el("p", { class: "text" });
    const marker = /\[(\d+)\]/g;
    let last = 0;
    for (const match of text.matchAll(marker)) {
      appendQuote(paragraph, text.slice(last, match.index), citations.get(Number(match[1])));
      const chip = chips.get(Number(match[1]));
      if (chip) {
        const ref = el("button", {
          type: "button", class: "cite-ref", "aria-label": `Open citation ${match[1]}`,
        }, match[1]);
        ref.addEventListener("click", () => chip.click());
        paragraph.append(ref);
      } else {
        paragraph.append(document.createTextNode(match[0]));
      }
      last = match.index + match[0].length;
    }
    paragraph.append(document.createTextNode(text.slice(last)));
    return paragraph;
  }

  function answerMessage(answer) {
    const named = new Set(answer.citations.map((c) => c.doc_id)).size > 1;
    const chips = new Map(answer.citations.map((c) => [c.n, citationChip(c, answer.answerable, named)]));
    const bubble = el("article", { class: "bubble", "aria-label": "Answer" });
    if (!answer.answerable) {
      bubble.append(el("p", { class: "badge" },
        el("span", { class: "badge-icon", "aria-hidden": "true" }, "?"), "Not covered by the documents"));
    } else if (answer.verdict === "uncertain") {
      // The nearest sentences, shown as such: they may not answer exactly.
      bubble.append(el("p", { class: "badge uncertain" },
        el("span", { class: "badge-icon", "aria-hidden": "true" }, "~"), "Uncertain: may not answer exactly"));
    }
    bubble.append(answerParagraph(answer.answer, chips, new Map(answer.citations.map((c) => [c.n, c]))));
    if (chips.size) {
      const titleId = `sources-${Math.random().toString(36).slice(2)}`;
      bubble.append(el("div", { class: "sources" },
        el("h3", { class: "sources-title", id: titleId },
          answer.answerable ? "Sources" : "Nearest passages — none of them answers this"),
        el("ul", { class: "chips", "aria-labelledby": titleId },
          ...[...chips.values()].map((chip) => el("li", {}, chip)))));
    }
    if (answer.dropped && answer.dropped.length) {
      // What the grounding check struck stays visible, crossed out, with the reason.
      bubble.append(el("div", { class: "struck" },
        el("p", { class: "struck-title" }, "Struck by the grounding check — the passages do not support:"),
        el("ul", {}, ...answer.dropped.map((d) =>
          el("li", {}, el("s", {}, d.text), el("span", { class: "reason" }, ` (${d.reason})`))))));
    }
    if (answer.notice) bubble.append(el("p", { class: "notice", role: "note" }, answer.notice));
    const percent = Math.round(answer.confidence * 100);
    const took = answer.took_ms < 1 ? "under 1 ms" : `${Math.round(answer.took_ms)} ms`;
    const by = answer.mode === "generative" ? ` · written by ${answer.model} from the passages` : "";
    bubble.append(el("p", { class: "meta" }, `Confidence ${percent}% · answered in ${took}${by}`));
    return el("li", { class: "message assistant" + (answer.answerable ? "" : " not-covered") },
      el("div", { class: "avatar", "aria-hidden": "true" }, "FQ"), bubble);
  }

  function errorMessage(message, retry) {
    const again = el("button", { type: "button", class: "button small" }, "Try again");
    again.addEventListener("click", retry);
    return el("li", { class: "message assistant error" },
      el("div", { class: "avatar", "aria-hidden": "true" }, "!"),
      el("div", { class: "bubble", role: "alert" },
        el("p", { class: "error-title" }, "No answer this time"),
        el("p", { class: "text" }, message),
        again));
  }

  // ------------------------------------------------------------------------------- asking

  function setBusy(value) {
    busy = value;
    form.setAttribute("aria-busy", String(value));
    send.disabled = value;
    send.querySelector(".send-label").textContent = value ? "Asking…" : "Send";
  }

  async function ask(question) {
    if (busy) return;
    question = question.trim();
    if (!question) {
      input.focus();
      return;
    }
    welcome.hidden = true;
    setBusy(true);
    addUserMessage(question);
    const pending = addPendingMessage();
    scrollThreadToEnd();
    announce("Searching the report…");
    const turns = history.slice();
    try {
      const body = { question, history: turns, top_k: 5 };
      const only = chosenDocuments();
      if (only) body.doc_ids = only;
      let streaming = null; // the bubble text an LLM's words appear in, as they arrive
      const answer = await apiStream("/api/answer/stream", body, (text) => {
        if (!streaming) {
          streaming = el("p", { class: "text streaming", "aria-busy": "true" });
          pending.classList.remove("pending");
          pending.querySelector(".bubble").replaceChildren(streaming);
        }
        streaming.append(document.createTextNode(text));
        scrollThreadToEnd();
      });
      const rendered = answerMessage(answer);
      pending.replaceWith(rendered);
      // For the page's add-ons (feedback.js): each rendered answer, with the row they add buttons to.
      const actions = el("div", { class: "answer-actions" });
      rendered.querySelector(".bubble").append(actions);
      document.dispatchEvent(new CustomEvent("forumqa:answer",
        { detail: { element: rendered, actions, answer, question, history: turns } }));
      history = turns.concat([{ role: "user", content: question }, { role: "assistant", content: answer.answer }]);
      announce(answer.answerable ? "Answer received." : "The report does not cover this question.");
    } catch (err) {
      const message = err instanceof ApiError ? err.message : "Something went wrong in the page.";
      pending.replaceWith(errorMessage(message, (event) => {
        event.currentTarget.closest(".message").remove();
        const asked = thread.lastElementChild;
        if (asked && asked.classList.contains("user")) asked.remove();
        ask(question);
      }));
    } finally {
      setBusy(false);
      scrollThreadToEnd();
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = input.value;
    if (busy || !question.trim()) return;
    input.value = "";
    autoGrow();
    ask(question);
  });

  input.addEventListener("keydown", (event) => {
    // isComposing: Enter that confirms a Korean (IME) syllable must not send the question.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  function autoGrow() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  }
  input.addEventListener("input", autoGrow);

  for (const button of document.querySelectorAll(".suggestion")) {
    button.addEventListener("click", () => {
      ask(button.textContent);
      input.focus();
    });
  }

  $("new-chat").addEventListener("click", () => {
    if (busy) return;
    history = [];
    thread.replaceChildren();
    welcome.hidden = false;
    closeReport(false);
    input.value = "";
    autoGrow();
    input.focus();
    announce("New chat started.");
  });

  // ---------------------------------------------------------------------------- the documents

  function formatSize(bytes) {
    if (bytes < 1024) return `${bytes} B`;
    if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
    return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  }

  // The ids questions are limited to, or null when every document is ticked (no filter is sent).
  function chosenDocuments() {
    const chosen = known.filter((d) => !excluded.has(d.id)).map((d) => d.id);
    return chosen.length === known.length ? null : chosen;
  }

  function updateFilterNote() {
    const only = chosenDocuments();
    filterNote.textContent = only ? ` Answering from ${only.length} of ${known.length} documents.` : "";
    // The last ticked document cannot be unticked: a question needs at least one.
    for (const box of docList.querySelectorAll("input.doc-check")) {
      box.disabled = box.checked && (only ? only.length : known.length) === 1;
    }
  }

  function documentItem(doc) {
    const check = el("input", { type: "checkbox", class: "doc-check", value: doc.id,
      checked: !excluded.has(doc.id) });
    check.addEventListener("change", () => {
      if (check.checked) excluded.delete(doc.id); else excluded.add(doc.id);
      updateFilterNote();
    });
    const facts = [doc.kind.toUpperCase(), formatSize(doc.size)];
    if (doc.page_count) facts.push(`${doc.page_count} ${doc.page_count === 1 ? "page" : "pages"}`);
    const item = el("li", { class: "doc", "data-doc": doc.id },
      el("label", { class: "doc-pick" }, check, el("span", { class: "doc-title" }, doc.title)),
      el("p", { class: "doc-meta" }, facts.join(" · ")));
    if (config.uploads) {
      const remove = el("button", { type: "button", class: "button small doc-remove",
        "aria-label": `Remove ${doc.title}` }, "Remove");
      remove.addEventListener("click", () => removeDocument(doc, remove));
      item.append(remove);
    }
    return item;
  }

  async function refreshDocuments() {
    try {
      const data = await api("/api/documents");
      known = data.documents.map((d) => ({ id: d.id, title: d.title, kind: d.kind, size: d.size, page_count: d.page_count }));
    } catch (err) {
      docList.replaceChildren(el("li", { class: "doc-error", role: "alert" },
        err instanceof ApiError ? err.message : "The documents could not be listed."));
      return;
    }
    for (const id of [...excluded]) if (!known.some((d) => d.id === id)) excluded.delete(id);
    docList.replaceChildren(...known.map(documentItem));
    updateFilterNote();
  }

  function showStatus(status) {
    const building = status.state === "building" || status.queued > 0;
    buildDot.hidden = !building;
    libraryStatus.classList.toggle("error", status.state === "failed");
    const pending = status.pending || { added: [], removed: [] };
    const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;
    if (status.state === "loading") {
      libraryStatus.textContent = "The index is loading…";
    } else if (building) {
      const stage = runningStage(status);
      const what = stage ? stageName(stage.name) : status.phase;
      const phase = what && what !== "building the index" ? ` (${what})` : "";
      const count = Number.isInteger(status.total) && status.total > 0 && Number.isInteger(status.done)
        ? `: ${status.done} of ${status.total}` : "";
      const waiting = [
        pending.added.length ? `${plural(pending.added.length, "new document is", "new documents are")} not searchable yet` : "",
        pending.removed.length ? `${plural(pending.removed.length, "removed document is", "removed documents are")} still searchable` : "",
      ].filter(Boolean).join("; ");
      libraryStatus.textContent = `Building the index${phase}${count}. ${waiting ? `${waiting}: ` : ""}answers come from the previous index meanwhile.`;
    } else if (status.state === "failed") {
      libraryStatus.textContent = `The last build failed: ${status.last_error || "unknown error"}. The previous index still answers.`;
    } else {
      libraryStatus.textContent = `Index up to date: ${status.documents} ${status.documents === 1 ? "document" : "documents"}.`;
    }
    followUploads(status, building);
    return building || status.state === "loading";
  }

  async function followBuild() {
    if (polling) return;
    let status;
    try {
      status = await api("/api/index/status");
    } catch (err) {
      libraryStatus.textContent = err instanceof ApiError ? err.message : "The build status is unavailable.";
      return;
    }
    // Also while an uploaded file is not served yet: with several workers, the one polled may swap in
    // the new index a moment after the one that built it.
    if (showStatus(status) || uploads.some((u) => u.state === "building")) {
      rebuilding = true;
      polling = window.setTimeout(() => { polling = null; followBuild(); }, 1000);
    } else if (rebuilding) {
      rebuilding = false;
      await refreshDocuments();
      announce(status.state === "failed" ? "The index could not be rebuilt." : "The index is rebuilt.");
    }
  }

  function buildStarted(status, message) {
    rebuilding = true;
    showStatus(status);
    announce(message);
    followBuild();
  }

  async function removeDocument(doc, button) {
    // Two steps, so a stray click never deletes a document.
    if (button.dataset.confirm !== "yes") {
      button.dataset.confirm = "yes";
      button.textContent = "Confirm removal";
      button.setAttribute("aria-label", `Confirm removing ${doc.title}`);
      window.setTimeout(() => {
        if (!button.isConnected) return;
        delete button.dataset.confirm;
        button.textContent = "Remove";
        button.setAttribute("aria-label", `Remove ${doc.title}`);
      }, 6000);
      return;
    }
    button.disabled = true;
    try {
      const result = await request(`/api/documents/${encodeURIComponent(doc.id)}`,
        { method: "DELETE", headers: { Accept: "application/json" } });
      buildStarted(result.build, `Removed ${doc.title}. Rebuilding the index.`);
    } catch (err) {
      button.disabled = false;
      libraryStatus.textContent = err instanceof ApiError ? err.message : "The document could not be removed.";
      libraryStatus.classList.add("error");
    }
  }

  // ------------------------------------------------------------------------------- uploads
  //
  // Every file chosen or dropped is listed at once ("Waiting to upload"), then sent one at a time; its
  // entry follows the build through GET /api/index/status (each stage with done/total, a rate and what
  // is left, when the server reports stages; the phase and the time so far otherwise) until the index
  // serves it, or says inline, next to the file, why it was refused or why the build failed.

  const STAGE_NAMES = {
    text: "Reading the text", chunks: "Cutting passages", bm25: "Keyword index",
    minilm: "MiniLM vectors", e5: "e5 vectors", use: "USE vectors",
  };
  // Words put before the server's own for the refusals whose message alone is terse; 415 and 422 say
  // what is wrong with the file themselves.
  const REFUSED = {
    403: "Adding documents is off", 409: "Already there", 413: "Too large", 429: "Too many uploads at once",
    503: "The server is not ready",
  };

  const stageName = (name) => STAGE_NAMES[name] || name;
  const isCount = (n) => Number.isInteger(n) && n >= 0;

  function runningStage(status) {
    return Array.isArray(status.stages) ? status.stages.find((s) => s.state === "running") || null : null;
  }

  function formatSeconds(seconds) {
    if (seconds < 1) return "under 1 s";
    if (seconds < 90) return `${Math.round(seconds)} s`;
    return `${Math.round(seconds / 60)} min`;
  }

  // "120 of 400 · 46 texts/s · about 6 s left"; "done in 4 s"; "waiting".
  function stageDetail(stage) {
    if (stage.state === "waiting") return "waiting";
    if (stage.state === "failed") return "failed";
    const parts = [];
    if (isCount(stage.done) && isCount(stage.total) && stage.total > 0) parts.push(`${stage.done} of ${stage.total}`);
    else if (isCount(stage.done)) parts.push(String(stage.done));
    if (stage.state === "done") {
      parts.push(typeof stage.seconds === "number" ? `done in ${formatSeconds(stage.seconds)}` : "done");
      return parts.join(" · ");
    }
    if (typeof stage.rate === "number" && stage.rate > 0) {
      parts.push(`${stage.rate >= 10 ? Math.round(stage.rate) : stage.rate.toFixed(1)} texts/s`);
      if (isCount(stage.done) && isCount(stage.total) && stage.total > stage.done) {
        parts.push(`about ${formatSeconds((stage.total - stage.done) / stage.rate)} left`);
      }
    }
    return parts.length ? parts.join(" · ") : "running";
  }

  function setProgress(bar, done, total) {
    const known = isCount(done) && isCount(total) && total > 0;
    bar.hidden = !known;
    if (known) {
      bar.max = total;
      bar.value = Math.min(done, total);
    }
  }

  function uploadItem(file) {
    const item = el("li", { class: "upload-item", "data-state": "waiting" });
    const state = el("p", { class: "upload-state" }, "Waiting to upload");
    const bar = el("progress", { class: "upload-progress", "aria-label": `Progress of ${file.name}`, hidden: true });
    const stages = el("ol", { class: "upload-stages", "aria-label": `Build stages for ${file.name}`, hidden: true });
    const error = el("p", { class: "upload-item-error", role: "alert", hidden: true });
    const dismiss = el("button", { type: "button", class: "button small upload-dismiss", hidden: true,
      "aria-label": `Dismiss ${file.name}` }, "Dismiss");
    item.append(
      el("p", { class: "upload-head" },
        el("span", { class: "upload-name" }, file.name || "unnamed file"),
        el("span", { class: "upload-size" }, formatSize(file.size))),
      state, bar, stages, error, dismiss);
    return { item, state, bar, stages, error, dismiss };
  }

  function setUpload(entry, state, text) {
    entry.state = state;
    entry.view.item.dataset.state = state;
    entry.view.state.textContent = text;
    const finished = state === "done" || state === "failed";
    entry.view.dismiss.hidden = !finished;
    if (finished) {
      entry.view.bar.hidden = true;
      entry.view.stages.hidden = true;
    }
  }

  function failUpload(entry, message) {
    setUpload(entry, "failed", "Not added");
    entry.view.error.textContent = message;
    entry.view.error.hidden = false;
    announce(`${entry.file.name} was not added: ${message}`);
  }

  function queueFiles(files) {
    for (const file of files) {
      const entry = { file, state: "waiting", docId: null, title: null, view: uploadItem(file) };
      entry.view.dismiss.addEventListener("click", () => {
        entry.view.item.remove();
        uploads.splice(uploads.indexOf(entry), 1);
        uploadFile.focus(); // the dismissed button is gone: focus goes back to choosing files
      });
      uploads.push(entry);
      uploadList.append(entry.view.item);
      // Refused here, not sent: a body over the cap is cut off by the server mid-upload.
      if (config.max_upload_bytes && file.size > config.max_upload_bytes) {
        let [size, limit] = [formatSize(file.size), formatSize(config.max_upload_bytes)];
        if (size === limit) [size, limit] = [`${file.size} bytes`, `${config.max_upload_bytes} bytes`];
        const refusal = `the file is ${size}; the limit is ${limit}`;
        failUpload(entry, `${REFUSED[413]}: ${refusal}.`);
      }
    }
    announce(files.length === 1 ? `${files[0].name} is waiting to upload.` : `${files.length} files are waiting to upload.`);
    const first = uploads[uploads.length - files.length];
    if (first) first.view.item.scrollIntoView({ block: "nearest", behavior: reducedMotion.matches ? "auto" : "smooth" });
    sendNext();
  }

  async function sendNext() {
    if (uploading) return;
    const entry = uploads.find((u) => u.state === "waiting");
    if (!entry) return;
    uploading = true;
    setUpload(entry, "uploading", "Uploading…");
    const body = new FormData();
    body.append("file", entry.file);
    try {
      const result = await request("/api/documents", { method: "POST", body, headers: { Accept: "application/json" } });
      entry.docId = result.document.id;
      entry.title = result.document.title;
      setUpload(entry, "building", `Uploaded as “${entry.title}”. Waiting for the build…`);
      buildStarted(result.build, `Uploaded ${entry.file.name}. Building the index.`);
    } catch (err) {
      const message = err instanceof ApiError ? err.message : "The file could not be uploaded.";
      const what = err instanceof ApiError && REFUSED[err.status];
      failUpload(entry, what ? `${what}: ${message}` : message.charAt(0).toUpperCase() + message.slice(1));
    } finally {
      uploading = false;
      sendNext();
    }
  }

  // Each uploaded file's entry, from one build status: building (with its stages), added, or failed.
  function followUploads(status, building) {
    const pending = new Set((status.pending && status.pending.added) || []);
    for (const entry of uploads) {
      if (entry.state !== "building" || status.state === "loading") continue;
      const served = !pending.has(entry.docId);
      const stages = Array.isArray(status.stages) ? status.stages : null;
      // Served and nothing left for it: with a staged build the later stages may still be running (shown
      // below); without stages, a build still running is for changes made after this file.
      if (served && (!building || !stages)) {
        setUpload(entry, "done", `Added as “${entry.title}”: questions can use it now.`);
        announce(`${entry.title} is added and can be asked about.`);
        continue;
      }
      if (!served && !building && status.state === "failed") {
        failUpload(entry, `The build failed: ${status.last_error || "unknown error"}. The previous index still answers.`);
        continue;
      }
      const stage = stages ? runningStage(status) : null;
      let text;
      if (served) {
        text = `“${entry.title}” can be asked about now; the rest of the build goes on.`;
      } else if (!building) {
        text = "Waiting for the index to include it…";
      } else if (stage) {
        text = `Building: ${stageName(stage.name)}`;
      } else {
        const phase = status.phase || "building the index";
        const elapsed = typeof status.started_at === "number" ? Date.now() / 1000 - status.started_at : -1;
        const parts = [phase.charAt(0).toUpperCase() + phase.slice(1)];
        if (elapsed >= 0 && elapsed < 86400 && status.phase !== "waiting to start") parts.push(`${formatSeconds(elapsed)} so far`);
        if (typeof status.seconds === "number" && status.builds > 0) parts.push(`the last build took ${formatSeconds(status.seconds)}`);
        text = `${parts.join(" · ")}…`;
      }
      entry.view.state.textContent = text;
      setProgress(entry.view.bar, stage ? stage.done : status.done, stage ? stage.total : status.total);
      entry.view.stages.hidden = !stages || !stages.length;
      if (stages) {
        entry.view.stages.replaceChildren(...stages.map((s) => el("li", { class: "stage", "data-state": s.state },
          el("span", { class: "stage-name" }, stageName(s.name)),
          el("span", { class: "stage-detail" }, stageDetail(s)))));
      }
    }
  }

  uploadForm.addEventListener("submit", (event) => {
    event.preventDefault();
    uploadError.hidden = true;
    const files = [...uploadFile.files];
    if (!files.length) {
      uploadError.textContent = "Choose a file first, or drop one here.";
      uploadError.hidden = false;
      uploadFile.focus();
      return;
    }
    uploadFile.value = ""; // the files are listed below now, each with its own progress
    queueFiles(files);
  });

  // Files dragged over the page: the panel is the target, the chat too (it opens the panel). Dropped
  // files never make the browser navigate away from the conversation, even when uploads are off.
  const carriesFiles = (event) => Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes("Files");
  let dragDepth = 0; // dragenter/dragleave pairs of nested elements

  function showDropTargets(on) {
    document.body.classList.toggle("dragging-files", on);
    dropOverlay.hidden = !on || !library.hidden;
  }

  document.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    dragDepth += 1;
    if (config.uploads) showDropTargets(true);
  });
  document.addEventListener("dragleave", (event) => {
    if (!carriesFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) showDropTargets(false);
  });
  document.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = config.uploads ? "copy" : "none";
  });
  document.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    showDropTargets(false);
    if (!config.uploads) {
      announce("Adding documents is off on this server.");
      return;
    }
    const files = [...event.dataTransfer.files];
    if (!files.length) return;
    if (library.hidden) openLibrary(true);
    queueFiles(files);
  });

  function openLibrary(open) {
    library.hidden = !open;
    document.body.classList.toggle("library-open", open);
    libraryToggle.setAttribute("aria-expanded", String(open));
    if (open) {
      refreshDocuments();
      followBuild();
      $("library-title").setAttribute("tabindex", "-1");
      $("library-title").focus({ preventScroll: true });
    } else {
      libraryToggle.focus();
    }
  }

  libraryToggle.addEventListener("click", () => openLibrary(library.hidden));
  $("library-close").addEventListener("click", () => openLibrary(false));

  async function loadConfig() {
    try {
      config = await api("/api/config");
    } catch (err) {
      return; // without it the panel still lists documents; adding and removing stay hidden
    }
    uploadForm.hidden = !config.uploads;
    if (config.uploads) {
      uploadFile.setAttribute("accept", config.accepted_kinds.map((k) => ({
        pdf: ".pdf", docx: ".docx", html: ".html,.htm", md: ".md,.markdown", txt: ".txt",
      })[k] || "").filter(Boolean).join(","));
      const kinds = config.accepted_kinds.map((k) => k.toUpperCase()).join(", ");
      uploadNote.textContent = `${kinds}; up to ${formatSize(config.max_upload_bytes)}. The kind is read from the file itself.`;
    }
    if (!library.hidden) refreshDocuments();
  }

  loadConfig().then(refreshDocuments).then(followBuild);

  // ------------------------------------------------------------------------------ the report

  // Appends document text[from:to] to `parent`, wrapping the part inside the passage in
  // <mark class="passage">, the part inside the sentence in one <mark class="sentence"> within it, and
  // the short answer (when there is one) in <strong class="short-answer"> within that.
  function appendMarked(parent, text, from, to, passage, sentence, short) {
    const cuts = [from, to, passage.start, passage.end, sentence.start, sentence.end,
      ...(short ? [short.start, short.end] : [])]
      .filter((x) => x >= from && x <= to);
    const points = [...new Set(cuts)].sort((a, b) => a - b);
    let passageMark = null;
    let sentenceMark = null;
    for (let i = 0; i + 1 < points.length; i += 1) {
      const [a, b] = [points[i], points[i + 1]];
      const piece = text.slice(a, b);
      const inPassage = a >= passage.start && b <= passage.end;
      const inSentence = a >= sentence.start && b <= sentence.end;
      if (!inPassage && !inSentence) {
        passageMark = null;
        sentenceMark = null;
        parent.append(document.createTextNode(piece));
        continue;
      }
      if (!passageMark) {
        passageMark = el("mark", { class: "passage" });
        parent.append(passageMark);
      }
      if (!inSentence) {
        sentenceMark = null;
        passageMark.append(document.createTextNode(piece));
        continue;
      }
      if (!sentenceMark) {
        sentenceMark = el("mark", { class: "sentence" });
        passageMark.append(sentenceMark);
      }
      const inShort = short && a >= short.start && b <= short.end;
      sentenceMark.append(inShort ? el("strong", { class: "short-answer" }, piece) : piece);
    }
  }

  function renderDocument(doc, citation) {
    const passage = { start: citation.start, end: citation.end };
    const sentence = { start: citation.highlight.start, end: citation.highlight.end };
    const short = citation.short_answer || null;
    const nodes = [];
    for (const section of doc.sections) {
      let bodyStart = section.start;
      // The section's heading line is shown as a heading, not repeated in the body.
      if (doc.text.startsWith(section.title, section.start)) bodyStart += section.title.length;
      while (bodyStart < section.end && /\s/.test(doc.text[bodyStart])) bodyStart += 1;
      const body = el("div", { class: "section-text" });
      appendMarked(body, doc.text, bodyStart, section.end, passage, sentence, short);
      const current = citation.start >= section.start && citation.start < section.end;
      nodes.push(el("section", { class: "doc-section" + (current ? " current" : "") },
        el("h3", {}, section.title), body));
    }
    if (!doc.sections.length) {
      const body = el("div", { class: "section-text" });
      appendMarked(body, doc.text, 0, doc.text.length, passage, sentence, short);
      nodes.push(body);
    }
    reportBody.replaceChildren(...nodes);
  }

  function setActiveChip(chip) {
    for (const other of document.querySelectorAll(".chip[aria-current]")) other.removeAttribute("aria-current");
    if (chip) chip.setAttribute("aria-current", "true");
  }

  async function openCitation(citation, chip) {
    openedBy = chip;
    setActiveChip(chip);
    report.hidden = false;
    document.body.classList.add("report-open");
    reportEyebrow.textContent = `Citation ${citation.n}`;
    reportTitle.textContent = citation.title;
    const page = pageLabel(citation);
    reportMeta.textContent = [citation.section, page, `characters ${citation.start}–${citation.end}`]
      .filter(Boolean).join(" · ");
    reportBody.setAttribute("aria-busy", "true");
    reportBody.replaceChildren(el("p", { class: "report-status" }, "Loading the report…"));
    reportTitle.focus({ preventScroll: true });
    try {
      const doc = await loadDocument(citation.doc_id);
      if (openedBy !== chip) return; // another citation was opened meanwhile
      reportTitle.textContent = doc.title;
      if (doc.source) reportMeta.textContent = [doc.source, citation.section, page].filter(Boolean).join(" · ");
      renderDocument(doc, citation);
      const mark = reportBody.querySelector("mark.sentence") || reportBody.querySelector("mark.passage");
      if (mark) mark.scrollIntoView({ block: "center", behavior: reducedMotion.matches ? "auto" : "smooth" });
      const where = page ? `${citation.section}, page ${citation.page}` : citation.section;
      announce(`Showing citation ${citation.n}, in ${where}, with the supporting sentence highlighted.`);
    } catch (err) {
      if (openedBy !== chip) return;
      const message = err instanceof ApiError ? err.message : "The report could not be shown.";
      reportBody.replaceChildren(el("p", { class: "report-status error", role: "alert" }, message));
    } finally {
      reportBody.setAttribute("aria-busy", "false");
    }
  }

  function closeReport(restoreFocus = true) {
    if (report.hidden) return;
    report.hidden = true;
    document.body.classList.remove("report-open");
    setActiveChip(null);
    if (restoreFocus && openedBy && openedBy.isConnected) openedBy.focus();
    openedBy = null;
  }

  $("report-close").addEventListener("click", () => closeReport());
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (!report.hidden) closeReport();
    else if (!library.hidden && library.contains(document.activeElement)) openLibrary(false);
  });

  input.focus();
})();
