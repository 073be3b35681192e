// The chat page: asks /api/answer, shows cited answers, opens citations in the report beside the chat,
// keeps conversations in this browser (localStorage), and lists the documents (adding and removing them
// when the server allows it, with the build status).
//
// Every piece of text that comes from the server (answers, passages, the report itself) is put into
// the page as text nodes (textContent / createTextNode), never parsed as HTML: a report or a question
// containing markup must show up as characters, not run.
//
// With accounts (GET /api/session says so), the page shows who is signed in, offers the sign-in form when
// nobody is, and hides what the role cannot do (adding to collections it may not write, removing their
// documents). Every request that changes something carries the session's CSRF proof (X-CSRF-Token): the
// page's fetch is wrapped once here, so feedback.js sends it too.
//
// After each answer is shown (asked now or restored from storage) the page dispatches
// `forumqa:answer` on document, detail {element, actions, answer, question, history}: other scripts of the page
// add their buttons to `actions`, the answer's row of buttons.
"use strict";

(() => {
  // The session's CSRF proof, from GET/POST /api/session; sent with every request that changes state.
  let csrf = null;
  const plainFetch = window.fetch.bind(window);
  window.fetch = (resource, options = {}) => {
    const method = (options.method || "GET").toUpperCase();
    if (csrf && !["GET", "HEAD", "OPTIONS"].includes(method)) {
      const headers = new Headers(options.headers || {});
      headers.set("X-CSRF-Token", csrf);
      options = { ...options, headers };
    }
    return plainFetch(resource, options);
  };

  const $ = (id) => document.getElementById(id);
  const thread = $("thread");
  const scroller = $("scroller");
  const welcome = $("welcome");
  const form = $("composer");
  const input = $("question");
  const send = $("send");
  const stop = $("stop");
  const counter = $("counter");
  const composerNote = $("composer-note");
  const editNote = $("edit-note");
  const report = $("report");
  const reportTitle = $("report-title");
  const reportMeta = $("report-meta");
  const reportEyebrow = $("report-eyebrow");
  const reportBody = $("report-body");
  const reportCopy = $("report-copy");
  const announcer = $("announcer");
  const chats = $("chats");
  const chatsToggle = $("chats-toggle");
  const chatList = $("chat-list");
  const chatsEmpty = $("chats-empty");
  const chatsNote = $("chats-note");
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
  const who = $("who");
  const signOutButton = $("sign-out");
  const signInOpen = $("sign-in-open");
  const signin = $("signin");
  const signinForm = $("signin-form");
  const signinUser = $("signin-user");
  const signinPassword = $("signin-password");
  const signinSend = $("signin-send");
  const signinError = $("signin-error");
  const uploadCollection = $("upload-collection");
  const uploadCollectionLabel = $("upload-collection-label");

  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  const documents = new Map(); // doc_id -> Promise of the document, fetched once
  let busy = false;
  let controller = null; // aborts the pending question (the Stop button)
  let openedBy = null; // the chip that opened the report, to return focus to on close
  let shownQuote = null; // the citation open in the report, for "Copy quote"
  let config = { uploads: false, max_upload_bytes: 0, accepted_kinds: [] }; // GET /api/config
  let session = { accounts: false, signed_in: false, write: [] }; // GET /api/session
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
  // For the page's other scripts (feedback.js), which make their elements the same way.
  window.forumqaPage = Object.freeze({ el });

  function announce(message) {
    // Cleared first so that the same message twice is announced twice.
    announcer.textContent = "";
    window.setTimeout(() => { announcer.textContent = message; }, 50);
  }

  // The end of the thread stays in view while the last answer is laid out (its buttons, 👍/👎 included,
  // may arrive a moment later), until the reader scrolls, clicks or types in the thread themselves.
  let pinned = false;

  function scrollThreadToEnd(smooth = true) {
    pinned = true;
    const behavior = smooth && !reducedMotion.matches ? "smooth" : "instant";
    scroller.scrollTo({ top: scroller.scrollHeight, behavior });
  }

  const keepPinned = new ResizeObserver(() => {
    if (pinned) scroller.scrollTo({ top: scroller.scrollHeight, behavior: "instant" });
  });
  keepPinned.observe(thread);
  keepPinned.observe(scroller);
  for (const type of ["wheel", "touchstart", "mousedown", "keydown"]) {
    scroller.addEventListener(type, () => { pinned = false; }, { passive: true });
  }

  const numberFormat = new Intl.NumberFormat("en");
  const plural = (n, one, many) => `${numberFormat.format(n)} ${n === 1 ? one : many}`;

  // Copies text to the clipboard; the Clipboard API needs a secure context (https or localhost), so a
  // page served over plain http elsewhere falls back to a selected hidden textarea.
  async function copyText(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (err) {
      const focused = document.activeElement;
      const area = el("textarea", { class: "visually-hidden", readonly: true, "aria-hidden": "true" });
      area.value = text;
      document.body.append(area);
      area.select();
      let done = false;
      try {
        done = document.execCommand("copy");
      } catch (err2) {
        done = false;
      }
      area.remove();
      if (focused && focused.focus) focused.focus({ preventScroll: true });
      return done;
    }
  }

  // A button that copies makeText() and says "Copied" for a moment.
  function copyButton(label, ariaLabel, makeText, extraClass) {
    const button = el("button", { type: "button", class: "button small" + (extraClass ? ` ${extraClass}` : ""),
      "aria-label": ariaLabel }, label);
    button.addEventListener("click", async () => {
      const done = await copyText(makeText());
      button.textContent = done ? "Copied" : "Copy failed";
      announce(done ? "Copied to the clipboard." : "The browser did not allow copying.");
      window.setTimeout(() => { button.textContent = label; }, 2000);
    });
    return button;
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
      if (response.status === 401 && session.accounts && session.signed_in) sessionEnded();
      throw new ApiError(message || `The server answered ${response.status} ${response.statusText}.`,
        response.status);
    }
    return data;
  }

  // POST to a streaming route: calls onToken(text) for each piece an LLM writes, resolves to the
  // final answer object. Errors before the stream (4xx/5xx JSON) throw ApiError like api(); aborting
  // `signal` (the Stop button) rejects with the AbortError itself, so the caller can tell it apart.
  async function apiStream(path, body, onToken, signal) {
    let response;
    try {
      response = await fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/x-ndjson" },
        body: JSON.stringify(body),
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw err;
      throw new ApiError("The server could not be reached. Check that it is running and try again.");
    }
    if (!response.ok || !response.body) {
      let data = null;
      try {
        data = await response.json();
      } catch (err) {
        if (signal.aborted) throw err;
        data = null;
      }
      const message = data && data.error && data.error.message;
      throw new ApiError(message || `The server answered ${response.status} ${response.statusText}.`,
        response.status);
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
      if (signal.aborted) throw err;
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

  // ---------------------------------------------------------------- what the documents are called

  // The page names the one document it answers from, or says "your documents" when there are several.
  // Filled from the documents list (`known`) each time the panel's code lists them again.
  const REPORT_ID = "third-korea-russia-forum"; // the suggestions of the welcome text are about it
  let corpus = { count: 0, title: "" };

  function corpusPhrase() {
    return corpus.count === 1 ? `“${corpus.title}”` : "your documents";
  }

  function applyCorpusTexts() {
    if (!known.length) return; // not listed (yet): keep the texts as they are
    corpus = { count: known.length, title: known[0].title };
    const one = corpus.count === 1;
    $("tagline").textContent = `Cited answers from ${corpusPhrase()}`;
    $("welcome-title").textContent = `Ask about ${corpusPhrase()}`;
    $("welcome-intro").textContent = one
      ? "Answers quote the document word for word. Each one lists its sources as numbered citations: "
        + "select one to read the passage in the document, with the supporting sentence highlighted. "
        + "Follow-up questions can refer to earlier ones."
      : "Answers quote your documents word for word. Each one lists its sources as numbered citations, "
        + "naming the document and section: select one to read the passage, with the supporting sentence "
        + "highlighted. Follow-up questions can refer to earlier ones.";
    document.title = `Forum QA — ${one ? corpus.title : "your documents"}`;
    $("suggestions").hidden = !known.some((d) => d.id === REPORT_ID);
    fitPlaceholder();
    markRemovedCitations();
  }

  // A citation of a document the index no longer holds says so on its chip.
  function markRemovedCitations() {
    if (!known.length) return;
    const ids = new Set(known.map((d) => d.id));
    for (const chip of thread.querySelectorAll(".chip[data-doc]")) {
      const removed = !ids.has(chip.dataset.doc);
      chip.classList.toggle("removed", removed);
      const note = chip.querySelector(".chip-removed");
      if (note) note.hidden = !removed;
    }
  }

  // The panel's code (below) lists the documents into #doc-list; each new list is a new `known`.
  new MutationObserver(applyCorpusTexts).observe(docList, { childList: true });

  // The longest placeholder that fits on one line of the question box (a phone is narrow).
  let measure = null;
  function fitPlaceholder() {
    const what = corpus.count === 1 ? `“${corpus.title}”` : corpus.count > 1 ? "your documents" : "the report";
    const choices = [`Ask a question about ${what}…`, `Ask about ${what}…`, "Ask a question…"];
    const style = getComputedStyle(input);
    const room = input.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    if (!(room > 0)) return; // not laid out (hidden)
    measure = measure || document.createElement("canvas").getContext("2d");
    measure.font = `${style.fontStyle} ${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    input.placeholder = choices.find((text) => measure.measureText(text).width <= room) || choices[choices.length - 1];
  }
  window.addEventListener("resize", fitPlaceholder);

  // ---------------------------------------------------------------------------- the sources

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

  const MARKER = /\[(\d+)\]/g;

  // The sources of an answer as the page shows them: the passages its [n] markers cite, numbered 1, 2, …
  // in the order the text first cites them; then the other passages retrieved ("Also found"). Returns
  // {cited, others, shown}, shown mapping the server's n to the number on the page.
  function sourcesOf(answer) {
    const byN = new Map(answer.citations.map((c) => [c.n, c]));
    const cited = [];
    if (answer.answerable) {
      for (const match of answer.answer.matchAll(MARKER)) {
        const citation = byN.get(Number(match[1]));
        if (citation && !cited.includes(citation)) cited.push(citation);
      }
    }
    const others = answer.citations.filter((c) => !cited.includes(c));
    const shown = new Map([...cited, ...others].map((c, i) => [c.n, i + 1]));
    return { cited, others, shown };
  }

  // "[3]" -> "[1]": markers and reasons renumbered as the page numbers the sources.
  function renumber(text, shown) {
    return text.replace(MARKER, (whole, n) => (shown.has(Number(n)) ? `[${shown.get(Number(n))}]` : whole));
  }

  // What each source is called: its document (when the answer cites several) and section, never the
  // same name twice ("Third Korea-Russia Forum" is both the report's title and its first section), and,
  // when two sources of one answer would read the same, the opening words of their sentences.
  function labelsOf(citations, named) {
    const labels = new Map();
    for (const c of citations) {
      const doc = named ? c.title : "";
      const section = named && c.section === c.title ? "" : c.section;
      labels.set(c, { doc, section, page: pageLabel(c), quote: "" });
    }
    const key = (l) => [l.doc, l.section, l.page].join("\u0000");
    const groups = new Map();
    for (const [c, l] of labels) groups.set(key(l), [...(groups.get(key(l)) || []), c]);
    for (const group of groups.values()) {
      if (group.length < 2) continue;
      // The words from where the sentences part (two highlights may open alike, or one hold the other).
      const words = group.map((c) => sentenceOf(c).trim().split(/\s+/));
      let same = 0;
      while (words.every((w) => same < w.length && w[same] === words[0][same])) same += 1;
      group.forEach((c, i) => {
        const from = same < words[i].length ? same : 0;
        const shown = words[i].slice(from, from + 5).join(" ");
        labels.get(c).quote = `“${from ? "…" : ""}${shown}${words[i].length > from + 5 ? "…" : ""}”`;
      });
    }
    return labels;
  }

  // The full name of a source, for tooltips, screen readers, copies and exports.
  function fullLabel(citation, spoken = false) {
    const where = citation.section === citation.title ? citation.title : `${citation.title} — ${citation.section}`;
    const page = spoken && pageLabel(citation) ? `page ${citation.page}` : pageLabel(citation);
    return page ? `${where}, ${page}` : where;
  }

  function citationChip(citation, number, label, kind, answer) {
    const sentence = sentenceOf(citation);
    const what = kind === "cited" ? "cited in the answer" : kind === "also" ? "also found, not cited" : "nearest passage";
    const chip = el("button", {
      type: "button",
      class: "chip" + (kind === "cited" ? " cited" : kind === "also" ? " also" : " muted"),
      "data-n": number,
      "data-doc": citation.doc_id,
      title: `${fullLabel(citation)}\n“${sentence}”`,
      "aria-label": `Source ${number}, ${what}: ${fullLabel(citation, true)}. Open it in the document.`,
    },
    el("span", { class: "chip-n", "aria-hidden": "true" }, String(number)),
    label.doc ? el("span", { class: "chip-doc", "aria-hidden": "true" }, label.doc) : null,
    // The page first: a long section title is cut short with an ellipsis, the page never is.
    label.section || label.page
      ? el("span", { class: "chip-label", "aria-hidden": "true" }, [label.page, label.section].filter(Boolean).join(" · "))
      : null,
    label.quote ? el("span", { class: "chip-quote", "aria-hidden": "true" }, label.quote) : null,
    el("span", { class: "chip-removed", "aria-hidden": "true", hidden: true }, "removed"));
    chip.addEventListener("click", () => openCitation(citation, number, chip, answer));
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

  // Answer text with its "[n]" markers turned into small buttons that open the source, numbered as the
  // page numbers them; the short answer of each quoted sentence, where the reader found one, in bold.
  function answerParagraph(text, chips, citations, shown) {
    const paragraph = el("p", { class: "text" });
    let last = 0;
    for (const match of text.matchAll(MARKER)) {
      const n = Number(match[1]);
      appendQuote(paragraph, text.slice(last, match.index), citations.get(n));
      const chip = chips.get(n);
      if (chip) {
        const ref = el("button", {
          type: "button", class: "cite-ref", "aria-label": `Open source ${shown.get(n)}`,
        }, String(shown.get(n)));
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

  // ------------------------------------------------------------------------ other languages

  // The script a text is mostly written in: "ko" (Hangul), "ru" (Cyrillic), "latin" or "".
  function scriptOf(text) {
    const count = (re) => (text.match(re) || []).length;
    const scores = { ko: count(/[\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]/g), ru: count(/[\u0400-\u04ff]/g),
      latin: count(/[A-Za-z]/g) };
    const best = Object.entries(scores).sort((a, b) => b[1] - a[1])[0];
    return best[1] > 0 ? best[0] : "";
  }

  // One line, in the question's language, for a Korean or Russian question answered in English.
  const ENGLISH_NOTE = {
    ko: "답변은 영어입니다. 문서의 문장을 원문(영어) 그대로 인용합니다.",
    ru: "Ответ на английском: предложения документа приводятся на языке оригинала.",
  };

  function languageNote(question, answer) {
    const asked = scriptOf(question);
    if (!ENGLISH_NOTE[asked] || scriptOf(answer.answer.replace(MARKER, "")) !== "latin") return null;
    return el("p", { class: "lang-note", lang: asked }, ENGLISH_NOTE[asked]);
  }

  // ------------------------------------------------------------------------------ the thread

  function addUserMessage(question, index, turn) {
    const item = el("li", { class: "message user", "data-turn": index },
      el("div", { class: "bubble" },
        el("h3", { class: "visually-hidden" }, "You asked"),
        el("p", { class: "text" }, question)),
      turn ? versionSwitcher(turn, index) : null);
    thread.append(item);
    return item;
  }

  // ◀ 2 / 3 ▶ under a question asked more than once (edited, or its answer written again): each version
  // keeps its answer and the questions that followed it.
  function versionSwitcher(turn, index) {
    const versions = turn.versions;
    if (!versions || versions.tails.length < 2) return null;
    const count = versions.tails.length;
    const at = versions.at;
    const button = (cls, label, icon, to) => {
      const b = el("button", { type: "button", class: `button icon version-step ${cls}`, "aria-label": label,
        title: label, disabled: to < 0 || to >= count }, el("span", { "aria-hidden": "true" }, icon));
      b.addEventListener("click", () => switchVersion(index, to, cls));
      return b;
    };
    return el("div", { class: "versions", role: "group",
      "aria-label": `Question ${index + 1}: version ${at + 1} of ${count}` },
    button("version-prev", "Previous version of this question", "◀", at - 1),
    el("span", { class: "version-label", "aria-hidden": "true" }, `${at + 1} / ${count}`),
    button("version-next", "Next version of this question", "▶", at + 1));
  }

  // Shows version `to` of turn `index`: the version shown goes back among the others, with its answer and
  // what followed it, and version `to` comes back with its own.
  function switchVersion(index, to, focusClass) {
    if (busy) return;
    const turns = current.turns;
    const versions = turns[index] && turns[index].versions;
    if (!versions || to === versions.at || !Array.isArray(versions.tails[to])) return;
    cancelEditing();
    closeReport(false);
    delete turns[index].versions;
    versions.tails[versions.at] = turns.slice(index);
    const next = versions.tails[to];
    versions.tails[to] = null;
    versions.at = to;
    next[0].versions = versions;
    turns.splice(index, turns.length - index, ...next);
    dropMessagesFrom(index);
    turns.slice(index).forEach((turn, i) => renderTurn(turn, index + i));
    saveStore();
    const item = thread.querySelector(`.message.user[data-turn="${index}"]`);
    if (item) {
      item.scrollIntoView({ block: "nearest" });
      const again = item.querySelector(`.${focusClass}:not(:disabled)`) || item.querySelector(".version-step:not(:disabled)");
      if (again) again.focus();
    }
    announce(`Showing version ${to + 1} of ${versions.tails.length} of question ${index + 1}.`);
  }

  function addPendingMessage(index) {
    const item = el("li", { class: "message assistant pending", "data-turn": index },
      el("div", { class: "avatar", "aria-hidden": "true" }, "FQ"),
      el("div", { class: "bubble" },
        el("p", { class: "text" },
          el("span", { class: "dots", "aria-hidden": "true" }, el("span"), el("span"), el("span")),
          ` Searching ${corpus.count === 1 ? "the document" : corpus.count > 1 ? "your documents" : "the report"}…`)));
    thread.append(item);
    return item;
  }

  function formatMs(ms) {
    return ms < 1 ? "under 1 ms" : `${numberFormat.format(Math.round(ms))} ms`;
  }

  // Each verdict has its own colour, icon, words and outline, so no one has to tell them apart by colour.
  const VERDICTS = {
    answered: { icon: "✓", words: "Answered from the documents" },
    uncertain: { icon: "?", words: "Uncertain: may not answer exactly" },
    not_covered: { icon: "∅", words: "Not covered by the documents" },
  };

  function verdictOf(answer) {
    if (!answer.answerable) return "not_covered";
    return answer.verdict === "uncertain" ? "uncertain" : "answered";
  }

  function verdictBadge(answer) {
    const verdict = verdictOf(answer);
    const { icon, words } = VERDICTS[verdict];
    return el("p", { class: `badge verdict-${verdict}`, "data-verdict": verdict },
      el("span", { class: "badge-icon", "aria-hidden": "true" }, icon), words);
  }

  // The reader's confidence, only where it is a number a reader can use: the chance that the answer shown
  // is right. Not for an answer the documents do not cover (there is no answer to be right), nor for one
  // the reader could not weigh (confidence 0: a question in a language whose models are still building).
  // What it means is a click (or a tap: phones show no tooltips) away. Returns [button, explanation].
  function confidenceNote(answer) {
    if (!answer.answerable || !(answer.confidence > 0)) return [null, null];
    const percent = Math.round(answer.confidence * 100);
    const explanation = answer.mode === "generative"
      ? "The reader's estimate that the passages quoted answer the question, from how often answers like "
        + "this one were right in its tests. Each sentence the LLM wrote was also checked against its passage."
      : "The reader's estimate that this answer is right, from how often answers like this one were right "
        + "in its tests. Answers it finds likely enough are marked Answered; the others, Uncertain.";
    const whyId = `why-${Math.random().toString(36).slice(2)}`;
    const why = el("p", { class: "confidence-why", id: whyId, hidden: true }, explanation);
    const button = el("button", { type: "button", class: "confidence", "aria-expanded": "false",
      "aria-controls": whyId, title: explanation },
    `${percent}% likely right`, el("span", { class: "confidence-icon", "aria-hidden": "true" }, "?"));
    button.addEventListener("click", () => {
      why.hidden = !why.hidden;
      button.setAttribute("aria-expanded", String(!why.hidden));
    });
    return [button, why];
  }

  function answerMessage(turn, index) {
    const answer = turn.answer;
    const { cited, others, shown } = sourcesOf(answer);
    const named = new Set(answer.citations.map((c) => c.doc_id)).size > 1;
    const labels = labelsOf(answer.citations, named);
    const kindOf = (c) => (!answer.answerable ? "nearest" : cited.includes(c) ? "cited" : "also");
    const chips = new Map(answer.citations.map((c) => [c.n, citationChip(c, shown.get(c.n), labels.get(c), kindOf(c), answer)]));
    const bubble = el("article", { class: "bubble", "aria-label": "Answer" });
    bubble.append(verdictBadge(answer));
    const note = languageNote(turn.question, answer);
    if (note) bubble.append(note);
    bubble.append(answerParagraph(answer.answer, chips, new Map(answer.citations.map((c) => [c.n, c])), shown));
    const group = (title, cls, list) => {
      const titleId = `sources-${Math.random().toString(36).slice(2)}`;
      return el("div", { class: cls },
        el("h3", { class: cls === "sources" ? "sources-title" : "also-title", id: titleId }, title),
        el("ul", { class: "chips", "aria-labelledby": titleId }, ...list.map((c) => el("li", {}, chips.get(c.n)))));
    };
    if (!answer.answerable && others.length) {
      bubble.append(group("Nearest passages — none of them answers this", "sources", others));
    } else {
      if (cited.length) bubble.append(group("Cited in the answer", "sources", cited));
      if (others.length) bubble.append(group("Also found — not cited", "also-found", others));
    }
    if (answer.dropped && answer.dropped.length) {
      // What the grounding check struck stays visible, crossed out, with the reason.
      bubble.append(el("div", { class: "struck" },
        el("p", { class: "struck-title" }, "Struck by the grounding check — the passages do not support:"),
        el("ul", {}, ...answer.dropped.map((d) =>
          el("li", {}, el("s", {}, renumber(d.text, shown)), el("span", { class: "reason" }, ` (${renumber(d.reason, shown)})`))))));
    }
    if (answer.notice) bubble.append(el("p", { class: "notice", role: "note" }, answer.notice));
    // A repeat comes from the server's cache: its took_ms is the look-up alone, not worth a number.
    const took = answer.cached ? "repeated from the cache" : `answered in ${formatMs(answer.took_ms)}`;
    const by = answer.mode === "generative" ? ` · written by ${answer.model} from the passages` : "";
    const [confidence, why] = confidenceNote(answer);
    bubble.append(el("p", { class: "meta" }, confidence, confidence ? " · " : null, `${took}${by}`));
    if (why) bubble.append(why);

    const actions = el("div", { class: "answer-actions", role: "group", "aria-label": "Answer actions" },
      copyButton("Copy", "Copy the answer with its sources", () => answerAsText(turn), "action-copy"),
      // Asking again gives an extractive answer back word for word (the reader is deterministic), so
      // Regenerate is offered where an LLM wrote the answer, or tried to (a notice says why it did not).
      regenerable(answer)
        ? actionButton("Regenerate", "Write this answer again", "action-regenerate", () => regenerate(index))
        : null,
      actionButton("Edit question", "Edit the question and ask it again", "action-edit", () => startEditing(index)));
    bubble.append(actions);
    const item = el("li", { class: `message assistant verdict-${verdictOf(answer)}` + (answer.answerable ? "" : " not-covered"),
      "data-turn": index }, el("div", { class: "avatar", "aria-hidden": "true" }, "FQ"), bubble);
    return { item, bubble, actions };
  }

  function regenerable(answer) {
    return answer.answerable && (answer.mode === "generative" || Boolean(answer.notice));
  }

  function actionButton(label, ariaLabel, cls, onClick) {
    const button = el("button", { type: "button", class: `button small ${cls}`, "aria-label": ariaLabel }, label);
    button.addEventListener("click", onClick);
    return button;
  }

  // Puts an answer's message in place of `slot` (or at the end of the thread), then tells the page's
  // other scripts it is there.
  function showAnswer(turn, index, slot) {
    const { item, bubble, actions } = answerMessage(turn, index);
    if (slot) slot.replaceWith(item); else thread.append(item);
    markRemovedCitations();
    document.dispatchEvent(new CustomEvent("forumqa:answer", {
      detail: { element: bubble, actions, answer: turn.answer, question: turn.question,
        history: historyBefore(current, index),
        // The reader's rating of this answer, kept with it in the conversation (feedback.js).
        feedback: turn.feedback || null,
        keepFeedback: (feedback) => {
          turn.feedback = feedback;
          saveStore();
        } },
    }));
    return item;
  }

  // A question the server refused as it stands (too long, say) is not sent again as is: "Edit question"
  // puts it back in the box. Anything else (the server down, a cut-off stream) can be tried again.
  function problemMessage(turn, index) {
    const problem = turn.error || { message: "", editable: false };
    const stopped = !turn.error;
    const buttons = [];
    if (stopped || !problem.editable) {
      buttons.push(actionButton("Try again", "Try again", "action-retry", () => ask(turn.question, index)));
    }
    buttons.push(actionButton("Edit question", "Edit the question and ask it again", "action-edit", () => startEditing(index)));
    const title = stopped ? "Stopped" : "No answer this time";
    const text = stopped
      ? (turn.stopped ? "You stopped this answer before it came." : "The page was closed before the answer came.")
      : problem.message;
    return el("li", { class: "message assistant " + (stopped ? "stopped" : "error"), "data-turn": index },
      el("div", { class: "avatar", "aria-hidden": "true" }, stopped ? "■" : "!"),
      el("div", { class: "bubble", role: stopped ? "status" : "alert" },
        el("p", { class: "error-title" }, title),
        el("p", { class: "text" }, text),
        el("div", { class: "answer-actions" }, ...buttons)));
  }

  function renderTurn(turn, index) {
    addUserMessage(turn.question, index, turn);
    if (turn.answer) showAnswer(turn, index, null);
    else thread.append(problemMessage(turn, index));
  }

  // Removes the messages of turns `index` and later from the thread.
  function dropMessagesFrom(index) {
    for (const item of [...thread.children]) {
      if (Number(item.dataset.turn) >= index) item.remove();
    }
  }

  // ------------------------------------------------------------------------ text of an answer

  function sourceLine(citation, number) {
    const at = `characters ${citation.start}–${citation.end}`;
    return `[${number}] ${fullLabel(citation)} (${at}): “${sentenceOf(citation)}”`;
  }

  // The answer and the sources it cites, as plain text (the "Copy" button).
  function answerAsText(turn) {
    const answer = turn.answer;
    const { cited, others, shown } = sourcesOf(answer);
    const lines = [renumber(answer.answer, shown)];
    const listed = cited.length ? cited : others;
    if (listed.length) {
      lines.push("", cited.length ? "Sources:" : "Nearest passages (none of them answers this):");
      for (const c of listed) lines.push(sourceLine(c, shown.get(c.n)));
    }
    return lines.join("\n");
  }

  // Text from documents and questions, so that Markdown shows it as written.
  function markdownText(text) {
    return text.replace(/([\\`*_<>])/g, "\\$1").replace(/\]\(/g, "]\\(").replace(/^([#>+-]|\d+\.)/gm, "\\$1");
  }

  function conversationAsMarkdown(conversation) {
    const lines = [`# ${markdownText(conversation.title)}`, "",
      `Exported from Forum QA on ${new Date().toLocaleString("en-GB", { dateStyle: "long", timeStyle: "short" })}. `
      + "Answers quote the documents; each lists the sources it cites.", ""];
    conversation.turns.forEach((turn, i) => {
      lines.push(`## ${i + 1}. ${markdownText(turn.question)}`, "");
      const answer = turn.answer;
      if (!answer) {
        lines.push(turn.error ? `*No answer: ${markdownText(turn.error.message)}*` : "*Stopped before the answer came.*", "");
        return;
      }
      const { cited, others, shown } = sourcesOf(answer);
      if (!answer.answerable) lines.push("*Not covered by the documents.*", "");
      else if (answer.verdict === "uncertain") lines.push("*Uncertain: may not answer exactly.*", "");
      lines.push(markdownText(renumber(answer.answer, shown)), "");
      const list = (title, citations) => {
        if (!citations.length) return;
        lines.push(title, "");
        for (const c of citations) {
          lines.push(`${shown.get(c.n)}. ${markdownText(fullLabel(c))}, characters ${c.start}–${c.end}:`,
            `   > ${markdownText(sentenceOf(c))}`);
        }
        lines.push("");
      };
      if (answer.answerable) {
        list("Sources:", cited);
        list("Also found (not cited):", others);
      } else {
        list("Nearest passages (none of them answers this):", others);
      }
    });
    return lines.join("\n");
  }

  function download(name, text) {
    const url = URL.createObjectURL(new Blob([text], { type: "text/markdown;charset=utf-8" }));
    const link = el("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function fileName(title) {
    const slug = title.toLowerCase().normalize("NFKD").replace(/[^\p{L}\p{N}]+/gu, "-").replace(/^-|-$/g, "").slice(0, 60);
    return `forum-qa-${slug || "conversation"}.md`;
  }

  // ------------------------------------------------------------------------- conversations

  // Conversations are kept in this browser: {version, active, conversations: [{id, title, created,
  // updated, turns: [{question, answer | null, error?: {message, editable}, stopped?}]}]}, newest
  // first. Answers are stored whole, as the server sent them.
  const STORE = "forumqa.conversations";
  // With accounts, the conversations kept here are one user's (named under OWNER): nobody else's show, and
  // nothing is kept while nobody is signed in. See restoreConversations().
  const OWNER = "forumqa.conversations.owner";
  let persisting = true;
  let conversations = [];
  let current = newConversation();
  let storageProblem = "";

  function newConversation() {
    const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    return { id, title: "", created: Date.now(), updated: Date.now(), turns: [] };
  }

  function validTurn(turn) {
    if (!turn || typeof turn.question !== "string") return false;
    const a = turn.answer;
    if (a === null || a === undefined) return true;
    return typeof a.answer === "string" && Array.isArray(a.citations)
      && a.citations.every((c) => c && typeof c.n === "number" && typeof c.text === "string" && c.highlight);
  }

  // A stored turn as the page can use it, or null: its other versions (each a list of turns, the one shown
  // being null) and its rating are kept only when well formed.
  function cleanTurn(turn) {
    if (!validTurn(turn)) return null;
    const fb = turn.feedback;
    if (fb && !(["up", "down"].includes(fb.rating) && typeof (fb.comment || "") === "string")) delete turn.feedback;
    const v = turn.versions;
    if (v) {
      const tails = Array.isArray(v.tails)
        ? v.tails.map((tail) => (tail === null ? null : Array.isArray(tail) ? tail.map(cleanTurn) : []))
        : [];
      const ok = tails.length >= 2 && Number.isInteger(v.at) && tails[v.at] === null
        && tails.filter((t) => t === null).length === 1
        && tails.every((t) => t === null || (t.length > 0 && t.every(Boolean)));
      if (ok) turn.versions = { tails, at: v.at }; else delete turn.versions;
    }
    return turn;
  }

  function readStore() {
    try {
      const data = JSON.parse(window.localStorage.getItem(STORE) || "null");
      if (!data || !Array.isArray(data.conversations)) return { active: null, conversations: [] };
      const list = data.conversations
        .filter((c) => c && typeof c.id === "string" && Array.isArray(c.turns))
        .map((c) => ({ id: c.id, title: String(c.title || "Conversation"), created: Number(c.created) || 0,
          updated: Number(c.updated) || 0, turns: c.turns.map(cleanTurn).filter(Boolean) }))
        .filter((c) => c.turns.length);
      return { active: data.active, conversations: list };
    } catch (err) {
      storageProblem = "Saved conversations could not be read in this browser.";
      return { active: null, conversations: [] };
    }
  }

  // Conversations changed: the list (when open) at once, the browser's storage when it is idle, so that
  // an answer is drawn before the whole store is written (and a question is sent without waiting for
  // it). Leaving or hiding the page writes a pending change at once.
  let saveScheduled = false;
  function saveStore() {
    if (!chats.hidden) renderChatList();
    if (saveScheduled) return;
    saveScheduled = true;
    const later = window.requestIdleCallback || ((write) => window.setTimeout(write, 50));
    later(writeStore, { timeout: 500 });
  }
  window.addEventListener("pagehide", () => writeStore());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") writeStore();
  });

  // Writes every conversation; when the browser's storage is full, the oldest ones are let go first.
  function writeStore() {
    if (!saveScheduled) return;
    saveScheduled = false;
    if (!persisting) return;
    let dropped = 0;
    for (;;) {
      const data = JSON.stringify({ version: 1, active: current.turns.length ? current.id : null, conversations });
      try {
        window.localStorage.setItem(STORE, data);
        storageProblem = dropped
          ? `The browser's storage is full: the ${plural(dropped, "oldest conversation was", "oldest conversations were")} removed.`
          : "";
        break;
      } catch (err) {
        const oldest = conversations.length - 1 - [...conversations].reverse().findIndex((c) => c !== current);
        if (conversations.length < 2 || oldest >= conversations.length) {
          storageProblem = "This browser does not keep conversations (its storage is off or full).";
          break;
        }
        conversations.splice(oldest, 1);
        dropped += 1;
      }
    }
    chatsNote.textContent = storageProblem || "Kept in this browser only.";
    chatsNote.classList.toggle("error", Boolean(storageProblem));
    if (dropped && !chats.hidden) renderChatList();
  }

  function titleFrom(question) {
    const words = question.replace(/\s+/g, " ").trim();
    return words.length > 60 ? `${words.slice(0, 59).trimEnd()}…` : words;
  }

  // The conversation was changed: newest first in the list, and saved.
  function touch(conversation) {
    conversation.updated = Date.now();
    if (!conversation.title && conversation.turns.length) conversation.title = titleFrom(conversation.turns[0].question);
    conversations = [conversation, ...conversations.filter((c) => c !== conversation)];
    saveStore();
  }

  // The {role, content} turns before turn `index`, sent with a question for follow-ups.
  function historyBefore(conversation, index) {
    const turns = [];
    for (const turn of conversation.turns.slice(0, index)) {
      if (!turn.answer) continue;
      turns.push({ role: "user", content: turn.question }, { role: "assistant", content: turn.answer.answer });
    }
    return turns;
  }

  // `save`: remember it as the one to show next time (not needed when it comes from the store).
  function showConversation(conversation, save = true) {
    if (busy) stopAsking();
    cancelEditing();
    closeReport(false);
    current = conversation;
    thread.replaceChildren();
    conversation.turns.forEach(renderTurn);
    welcome.hidden = conversation.turns.length > 0;
    if (save) saveStore();
    scrollThreadToEnd(false); // and kept there while the answers' buttons arrive
  }

  // --------------------------------------------------------------------- the conversations list

  function formatWhen(time) {
    const date = new Date(time);
    const sameDay = date.toDateString() === new Date().toDateString();
    return sameDay
      ? date.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" })
      : date.toLocaleDateString("en-GB", { day: "numeric", month: "short", year: "numeric" });
  }

  function chatItem(conversation) {
    const open = el("button", { type: "button", class: "chat-open", "aria-current": conversation === current ? "true" : false },
      el("span", { class: "chat-title" }, conversation.title),
      el("span", { class: "chat-meta" },
        `${plural(conversation.turns.length, "question", "questions")} · ${formatWhen(conversation.updated)}`));
    open.addEventListener("click", () => {
      openChats(false);
      if (conversation !== current) {
        showConversation(conversation);
        announce(`Showing “${conversation.title}”.`);
      }
      input.focus();
    });
    const rename = el("button", { type: "button", class: "button small chat-rename",
      "aria-label": `Rename “${conversation.title}”` }, "Rename");
    const exportIt = el("button", { type: "button", class: "button small chat-export",
      "aria-label": `Export “${conversation.title}” as Markdown` }, "Export");
    const remove = el("button", { type: "button", class: "button small chat-delete",
      "aria-label": `Delete “${conversation.title}”` }, "Delete");
    const item = el("li", { class: "chat-item", "data-id": conversation.id }, open,
      el("div", { class: "chat-actions" }, rename, exportIt, remove));
    rename.addEventListener("click", () => startRenaming(item, conversation));
    exportIt.addEventListener("click", () => {
      download(fileName(conversation.title), conversationAsMarkdown(conversation));
      announce(`Exported “${conversation.title}”.`);
    });
    remove.addEventListener("click", () => deleteConversation(conversation, remove));
    return item;
  }

  function renderChatList() {
    chatList.replaceChildren(...conversations.map(chatItem));
    chatsEmpty.hidden = conversations.length > 0;
  }

  function startRenaming(item, conversation) {
    const field = el("input", { type: "text", class: "chat-title-input", maxlength: 120,
      "aria-label": "New name of the conversation" });
    field.value = conversation.title;
    const save = el("button", { type: "submit", class: "button small" }, "Save");
    const cancel = el("button", { type: "button", class: "button small" }, "Cancel");
    const editor = el("form", { class: "chat-rename-form" }, field, save, cancel);
    const done = (keep) => {
      const title = field.value.replace(/\s+/g, " ").trim();
      if (keep && title) {
        conversation.title = title.slice(0, 120);
        saveStore(); // renaming does not move it up the list
        announce(`Renamed to “${conversation.title}”.`);
      } else {
        renderChatList();
      }
      const again = chatList.querySelector(`[data-id="${CSS.escape(conversation.id)}"] .chat-rename`);
      if (again) again.focus();
    };
    editor.addEventListener("submit", (event) => { event.preventDefault(); done(true); });
    cancel.addEventListener("click", () => done(false));
    field.addEventListener("keydown", (event) => {
      if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); done(false); }
    });
    item.replaceChildren(editor);
    field.focus();
    field.select();
  }

  function deleteConversation(conversation, button) {
    // Two steps, so a stray click never deletes a conversation.
    if (button.dataset.confirm !== "yes") {
      button.dataset.confirm = "yes";
      button.textContent = "Confirm delete";
      button.setAttribute("aria-label", `Confirm deleting “${conversation.title}”`);
      window.setTimeout(() => {
        if (!button.isConnected) return;
        delete button.dataset.confirm;
        button.textContent = "Delete";
        button.setAttribute("aria-label", `Delete “${conversation.title}”`);
      }, 6000);
      return;
    }
    conversations = conversations.filter((c) => c !== conversation);
    if (conversation === current) showConversation(newConversation());
    else saveStore();
    announce(`Deleted “${conversation.title}”.`);
    const next = chatList.querySelector(".chat-open");
    (next || $("chats-title")).focus();
  }

  function openChats(open) {
    chats.hidden = !open;
    chatsToggle.setAttribute("aria-expanded", String(open));
    if (open) {
      renderChatList();
      $("chats-title").focus({ preventScroll: true });
    }
  }

  chatsToggle.addEventListener("click", () => {
    openChats(chats.hidden);
    if (chats.hidden) chatsToggle.focus();
  });
  $("chats-close").addEventListener("click", () => { openChats(false); chatsToggle.focus(); });

  // Another tab saved: take its list, keeping this tab's own conversation as it is here.
  window.addEventListener("storage", (event) => {
    if (event.key !== STORE || !persisting) return;
    const stored = readStore();
    conversations = stored.conversations.map((c) => (c.id === current.id ? current : c));
    renderChatList();
  });

  $("new-chat").addEventListener("click", () => {
    const had = current.turns.length > 0;
    showConversation(newConversation());
    input.value = "";
    autoGrow();
    updateCounter();
    input.focus();
    announce(had ? "New chat started. The previous one is under Chats." : "New chat started.");
  });

  // ------------------------------------------------------------------------------- the composer

  // The server's limit, from GET /api/config (the server refuses longer questions with a 422).
  const questionLimit = () => config.max_question_chars || 0;
  // Characters as the server counts them (code points of the trimmed text), not UTF-16 units.
  const lengthOf = (text) => [...text.trim()].length;

  // The counter appears from 80 % of the limit; over the limit it says by how much.
  function updateCounter() {
    const limit = questionLimit();
    const length = lengthOf(input.value);
    const near = limit > 0 && length >= limit * 0.8;
    counter.hidden = !near;
    if (!near) return;
    const over = length - limit;
    counter.classList.toggle("over", over > 0);
    counter.textContent = `${numberFormat.format(length)} / ${numberFormat.format(limit)}`
      + (over > 0 ? ` — ${plural(over, "character", "characters")} over the limit` : "");
  }

  function showComposerNote(message) {
    composerNote.textContent = message;
    composerNote.hidden = !message;
  }

  let editing = null; // {index}: the composer holds turn `index`'s question, to ask it again

  function startEditing(index) {
    if (busy) return;
    const turn = current.turns[index];
    if (!turn) return;
    editing = { index };
    input.value = turn.question;
    const later = current.turns.length - 1 - index;
    $("edit-text").textContent = turn.answer
      ? `Editing question ${index + 1}. Sending asks it as a new version; the earlier one`
        + (later > 0 ? `, with the ${plural(later, "question", "questions")} after it,` : "")
        + " stays: switch between them with ◀ ▶ under the question."
      : `Editing question ${index + 1}. Sending asks it in place of the one that got no answer.`;
    editNote.hidden = false;
    autoGrow();
    updateCounter();
    showComposerNote("");
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  function cancelEditing() {
    if (!editing) return;
    editing = null;
    editNote.hidden = true;
  }

  $("edit-cancel").addEventListener("click", () => {
    cancelEditing();
    input.value = "";
    autoGrow();
    updateCounter();
    input.focus();
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (busy) return;
    const question = input.value;
    const limit = questionLimit();
    if (!question.trim()) {
      showComposerNote("Type a question first.");
      input.focus();
      return;
    }
    if (limit && lengthOf(question) > limit) {
      // Kept in the box, to be shortened; nothing is sent.
      const over = lengthOf(question) - limit;
      showComposerNote(`The question is too long: shorten it by ${plural(over, "character", "characters")} `
        + `(the limit is ${numberFormat.format(limit)}).`);
      input.focus();
      return;
    }
    const at = editing ? editing.index : current.turns.length;
    const branch = Boolean(editing);
    cancelEditing();
    input.value = "";
    autoGrow();
    updateCounter();
    ask(question, at, { branch });
  });

  input.addEventListener("keydown", (event) => {
    // isComposing: Enter that confirms a Korean (IME) syllable must not send the question.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === "Escape" && busy) {
      event.preventDefault();
      stopAsking();
    }
  });

  function autoGrow() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
  }
  input.addEventListener("input", () => {
    autoGrow();
    updateCounter();
    if (!composerNote.hidden) showComposerNote("");
  });

  for (const button of document.querySelectorAll(".suggestion")) {
    button.addEventListener("click", () => {
      ask(button.textContent, current.turns.length);
      input.focus();
    });
  }

  // ------------------------------------------------------------------------------- asking

  function setBusy(value) {
    busy = value;
    form.setAttribute("aria-busy", String(value));
    send.disabled = value;
    send.querySelector(".send-label").textContent = value ? "Asking…" : "Send";
    // While a question is pending, Stop takes Send's place (and its focus, if it had it).
    const hadFocus = document.activeElement === (value ? send : stop);
    send.hidden = value;
    stop.hidden = !value;
    if (hadFocus) (value ? stop : input).focus();
  }

  function stopAsking() {
    if (controller) controller.abort();
  }
  stop.addEventListener("click", stopAsking);

  // A generated answer written again, past the server's cache; the earlier one stays as a version.
  function regenerate(index) {
    const turn = current.turns[index];
    if (turn) ask(turn.question, index, { branch: true, fresh: true });
  }

  // Asks `question` as turn `index` of the current conversation. `branch` (an edited question, a
  // regenerated answer): the turn there, with its answer and the turns after it, is kept as another
  // version of it (◀ ▶); otherwise (a retry of a question that got no answer) it is replaced. `fresh`:
  // answered past the server's cache.
  async function ask(question, index, { branch = false, fresh = false } = {}) {
    if (busy) return;
    question = question.trim();
    if (!question) {
      input.focus();
      return;
    }
    const conversation = current;
    const turn = { question, answer: null };
    const old = conversation.turns[index];
    if (old && branch && old.answer) {
      const versions = old.versions || { tails: [null], at: 0 };
      delete old.versions;
      versions.tails[versions.at] = conversation.turns.slice(index);
      versions.tails.push(null);
      versions.at = versions.tails.length - 1;
      turn.versions = versions;
    } else if (old && old.versions) {
      turn.versions = old.versions; // a retry keeps its place's other versions
    }
    conversation.turns.splice(index);
    dropMessagesFrom(index);
    conversation.turns.push(turn);
    touch(conversation);
    welcome.hidden = true;
    showComposerNote("");
    setBusy(true);
    addUserMessage(question, index, turn);
    const pending = addPendingMessage(index);
    scrollThreadToEnd();
    announce("Searching…");
    controller = new AbortController();
    const signal = controller.signal;
    try {
      const body = { question, history: historyBefore(conversation, index), top_k: 5 };
      const only = chosenDocuments();
      if (only) body.doc_ids = only;
      if (fresh) body.fresh = true;
      let streaming = null; // the bubble text an LLM's words appear in, as they arrive
      const answer = await apiStream("/api/answer/stream", body, (text) => {
        if (!streaming) {
          streaming = el("p", { class: "text streaming", "aria-busy": "true" });
          pending.classList.remove("pending");
          pending.querySelector(".bubble").replaceChildren(streaming);
        }
        streaming.append(document.createTextNode(text));
        scrollThreadToEnd();
      }, signal);
      turn.answer = answer;
      if (pending.isConnected) showAnswer(turn, index, pending);
      announce(answer.answerable ? "Answer received." : "The documents do not cover this question.");
    } catch (err) {
      if (signal.aborted) {
        turn.stopped = true;
        announce("Stopped.");
      } else {
        const message = err instanceof ApiError ? err.message : "Something went wrong in the page.";
        // 4xx but 408 and 429: the question itself was refused, and would be again.
        const editable = err instanceof ApiError && err.status >= 400 && err.status < 500
          && err.status !== 408 && err.status !== 429;
        turn.error = { message, editable };
      }
      if (pending.isConnected) pending.replaceWith(problemMessage(turn, index));
    } finally {
      controller = null;
      if (conversations.includes(conversation) && conversation.turns.includes(turn)) touch(conversation);
      setBusy(false);
      scrollThreadToEnd();
    }
  }

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
    // Just added: answerable already, while the slower models still embed it.
    if (doc.embedding.length) facts.push(`still adding ${doc.embedding.join(", ")}`);
    const item = el("li", { class: "doc", "data-doc": doc.id },
      el("label", { class: "doc-pick" }, check, el("span", { class: "doc-title" }, doc.title)),
      el("p", { class: "doc-meta" }, facts.join(" · ")));
    if (config.uploads && mayWrite(doc.collection)) {
      const rename = el("button", { type: "button", class: "button small doc-rename",
        "aria-label": `Rename ${doc.title}` }, "Rename");
      rename.addEventListener("click", () => startRenamingDocument(item, doc));
      const remove = el("button", { type: "button", class: "button small doc-remove",
        "aria-label": `Remove ${doc.title}` }, "Remove");
      remove.addEventListener("click", () => removeDocument(doc, remove));
      item.append(el("div", { class: "doc-actions" }, rename, remove));
    }
    return item;
  }

  // Renaming a document (PATCH /api/documents/{id}): its id stays, so citations kept in conversations
  // still open it; lists and new citations use the new title once the index is rebuilt.
  function startRenamingDocument(item, doc) {
    const actions = item.querySelector(".doc-actions");
    const field = el("input", { type: "text", class: "doc-title-input", maxlength: 200,
      "aria-label": `New title of ${doc.title}` });
    field.value = doc.title;
    const save = el("button", { type: "submit", class: "button small primary" }, "Save");
    const cancel = el("button", { type: "button", class: "button small" }, "Cancel");
    const error = el("p", { class: "doc-rename-error", role: "alert", hidden: true });
    const editor = el("form", { class: "doc-rename-form", novalidate: true },
      field, el("div", { class: "doc-rename-buttons" }, save, cancel), error);
    const close = () => {
      editor.remove();
      actions.hidden = false;
      const again = actions.querySelector(".doc-rename");
      if (again) again.focus();
    };
    const fail = (message) => {
      error.textContent = message;
      error.hidden = false;
      field.focus();
    };
    editor.addEventListener("submit", async (event) => {
      event.preventDefault();
      const title = field.value.replace(/\s+/g, " ").trim();
      if (!title) {
        fail("Type a title first.");
        return;
      }
      if (title === doc.title) {
        close();
        return;
      }
      save.disabled = true;
      try {
        const result = await request(`/api/documents/${encodeURIComponent(doc.id)}`, {
          method: "PATCH",
          headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ title }),
        });
        const renamed = result.document.title;
        item.querySelector(".doc-title").textContent = renamed;
        let note = item.querySelector(".doc-renamed");
        if (!note) {
          note = el("p", { class: "doc-renamed" });
          actions.before(note);
        }
        note.textContent = "Renamed: answers use the new title once the index is rebuilt.";
        close();
        buildStarted(result.build, `Renamed to “${renamed}”. Rebuilding the index.`);
      } catch (err) {
        save.disabled = false;
        fail(err instanceof ApiError ? err.message.charAt(0).toUpperCase() + err.message.slice(1)
          : "The document could not be renamed.");
      }
    });
    cancel.addEventListener("click", close);
    field.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        close();
      }
    });
    actions.hidden = true;
    actions.before(editor);
    field.focus();
    field.select();
  }

  async function refreshDocuments() {
    try {
      const data = await api("/api/documents");
      // Summaries: a document's text is fetched when it is opened (documentText).
      known = data.documents.map((d) => ({ id: d.id, title: d.title, kind: d.kind, size: d.size,
        page_count: d.page_count, embedding: d.embedding || [], collection: d.collection || "default" }));
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
      // The builder's phase may read "building the index: e5"; the sentence already says "Building the index".
      const detail = what ? what.replace(/^building the index:?\s*/, "") : "";
      const phase = detail ? ` (${detail})` : "";
      const count = Number.isInteger(status.total) && status.total > 0 && Number.isInteger(status.done)
        ? `: ${status.done} of ${status.total}` : "";
      const waiting = [
        pending.added.length ? `${plural(pending.added.length, "new document is", "new documents are")} not searchable yet` : "",
        pending.removed.length ? `${plural(pending.removed.length, "removed document is", "removed documents are")} still searchable` : "",
      ].filter(Boolean).join("; ");
      libraryStatus.textContent = `Building the index${phase}${count}. `
        + (waiting ? `${waiting}: answers` : "Answers") + " come from the previous index meanwhile.";
    } else if (status.state === "failed") {
      libraryStatus.textContent = `The last build failed: ${status.last_error || "unknown error"}. The previous index still answers.`;
    } else {
      libraryStatus.textContent = `Index up to date: ${status.documents} ${status.documents === 1 ? "document" : "documents"}.`;
    }
    showFailures(status.failed || []);
    followUploads(status, building);
    return building || status.state === "loading";
  }

  // A document a model gave up on (the database store, after a few tries): said on its row, or under the
  // list when it is not served at all, with the error.
  function showFailures(failed) {
    for (const old of docList.querySelectorAll(".doc-failure")) old.remove();
    for (const failure of failed) {
      const text = `Could not embed ${failure.doc_id} with ${failure.model} (${failure.attempts} tries): ${failure.error}`;
      const row = docList.querySelector(`li[data-doc="${CSS.escape(failure.doc_id)}"]`);
      const note = el("p", { class: "doc-meta doc-error doc-failure", role: "alert" }, text);
      if (row) row.append(note); else docList.append(el("li", { class: "doc doc-failure" }, note));
    }
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
    if (session.accounts && uploadCollection.value) body.append("collection", uploadCollection.value);
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

  // Choosing files sends them: there is nothing else to press.
  uploadFile.addEventListener("change", () => {
    uploadError.hidden = true;
    const files = [...uploadFile.files];
    if (!files.length) return;
    uploadFile.value = ""; // the files are listed below now, each with its own progress
    queueFiles(files);
  });
  uploadForm.addEventListener("submit", (event) => event.preventDefault());

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
  }

  // ------------------------------------------------------------------------------ accounts

  // Documents of this collection may be removed here: without accounts, wherever uploads are on.
  function mayWrite(collection) {
    return !session.accounts || session.via === "key" || (session.write || []).includes(collection || "default");
  }

  function showSession(data) {
    session = data;
    csrf = data.csrf || null;
    const signedIn = Boolean(data.accounts && data.signed_in);
    who.hidden = !signedIn;
    if (signedIn) {
      who.replaceChildren("Signed in as ", el("strong", {}, data.user), ` (${data.role})`);
    }
    signOutButton.hidden = !signedIn;
    signInOpen.hidden = !(data.accounts && !data.signed_in && data.via === "anonymous");
    // Nobody signed in and nothing granted to everyone: the form is all there is to do.
    showSignIn(data.accounts && !data.signed_in && data.via !== "anonymous");
    const writable = data.write || [];
    uploadCollection.replaceChildren(...writable.map((c) => el("option", { value: c }, c)));
    uploadCollectionLabel.hidden = !(data.accounts && writable.length > 1);
  }

  function showSignIn(on, message) {
    signin.hidden = !on;
    welcome.hidden = on || thread.children.length > 0;
    signinError.hidden = !message;
    signinError.textContent = message || "";
    if (on) signinUser.focus();
  }

  function sessionEnded() {
    session = { ...session, signed_in: false };
    csrf = null;
    who.hidden = true;
    signOutButton.hidden = true;
    showSignIn(true, "Your session has ended: sign in again.");
  }

  async function loadSession() {
    try {
      showSession(await api("/api/session"));
    } catch (err) {
      // An older server, or one behind a key: the page works as it did.
    }
  }

  // What the page shows depends on who is signed in: the session, then what the server allows, the
  // documents they may read, and the build.
  // The conversations kept in this browser: without accounts, as always; with accounts, only the signed-in
  // user's (another user's are deleted from this browser when someone else signs in here), and none while
  // nobody is signed in. The one open last comes back, once the page's other deferred scripts have run (so
  // they hear the forumqa:answer events of its answers too).
  const domReady = new Promise((resolve) => document.addEventListener("DOMContentLoaded", resolve));

  function restoreConversations() {
    const me = session.accounts ? (session.signed_in ? session.user : null) : "";
    persisting = me !== null;
    if (me) {
      try {
        if (window.localStorage.getItem(OWNER) !== me) {
          window.localStorage.removeItem(STORE);
          window.localStorage.setItem(OWNER, me);
        }
      } catch (err) {
        // Storage is off: nothing is kept, nothing to hide.
      }
    }
    const stored = persisting ? readStore() : { active: null, conversations: [] };
    conversations = stored.conversations;
    const active = conversations.find((c) => c.id === stored.active);
    if (active) showConversation(active, false);
    else if (session.accounts) showConversation(newConversation(), false);
    renderChatList();
    if (!signin.hidden) welcome.hidden = true;
  }

  async function loadAll() {
    await loadSession();
    await domReady;
    restoreConversations();
    await loadConfig();
    if (session.accounts && !session.signed_in && session.via !== "anonymous") {
      known = [];
      docList.replaceChildren();
      return;
    }
    await refreshDocuments();
    followBuild();
  }

  signinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = signinUser.value.trim();
    if (!username || !signinPassword.value) {
      showSignIn(true, "Type your user name and password.");
      (username ? signinPassword : signinUser).focus();
      return;
    }
    signinSend.disabled = true;
    try {
      const data = await api("/api/session", { username, password: signinPassword.value });
      signinPassword.value = "";
      showSession(data);
      announce(`Signed in as ${data.user}.`);
      await loadAll();
      input.focus();
    } catch (err) {
      signinPassword.value = "";
      showSignIn(true, err instanceof ApiError ? err.message : "Signing in failed.");
      signinPassword.focus();
    } finally {
      signinSend.disabled = false;
    }
  });

  signOutButton.addEventListener("click", async () => {
    try {
      await request("/api/session", { method: "DELETE", headers: { Accept: "application/json" } });
    } catch (err) {
      // Signed out already, or the server is away: the page forgets the session either way.
    }
    csrf = null;
    documents.clear();
    closeReport(false);
    announce("Signed out.");
    await loadAll();
  });

  signInOpen.addEventListener("click", () => showSignIn(true));

  loadAll();

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

  // A citation whose document was removed from the library: what the answer quoted is kept with the
  // answer, so it is shown on its own, with the supporting sentence highlighted.
  function renderRemoved(citation) {
    const shift = (span) => (span ? { ...span, start: span.start - citation.start, end: span.end - citation.start } : null);
    const quote = el("div", { class: "section-text removed-quote" });
    appendMarked(quote, citation.text, 0, citation.text.length, { start: 0, end: citation.text.length },
      shift(citation.highlight), shift(citation.short_answer));
    reportBody.replaceChildren(
      el("p", { class: "report-status removed", role: "status" },
        "This document was removed, so it can no longer be opened. The passage the answer quoted is below."),
      quote);
  }

  async function openCitation(citation, number, chip, answer) {
    openedBy = chip;
    shownQuote = citation;
    setActiveChip(chip);
    report.hidden = false;
    document.body.classList.add("report-open");
    const cited = answer.answerable && chip.classList.contains("cited");
    reportEyebrow.textContent = `Source ${number}${cited ? " · cited" : ""}`;
    reportTitle.textContent = citation.title;
    const page = pageLabel(citation);
    reportMeta.textContent = [citation.section, page, `characters ${citation.start}–${citation.end}`]
      .filter(Boolean).join(" · ");
    reportBody.setAttribute("aria-busy", "true");
    reportBody.replaceChildren(el("p", { class: "report-status" }, "Loading the document…"));
    reportTitle.focus({ preventScroll: true });
    try {
      // A document the index no longer lists is not asked for (the server would answer 404).
      if (known.length && !known.some((d) => d.id === citation.doc_id)) throw new ApiError("removed", 404);
      const doc = await loadDocument(citation.doc_id);
      if (openedBy !== chip) return; // another citation was opened meanwhile
      reportTitle.textContent = doc.title;
      if (doc.source) reportMeta.textContent = [doc.source, citation.section, page].filter(Boolean).join(" · ");
      renderDocument(doc, citation);
      const mark = reportBody.querySelector("mark.sentence") || reportBody.querySelector("mark.passage");
      if (mark) mark.scrollIntoView({ block: "center", behavior: reducedMotion.matches ? "auto" : "smooth" });
      const where = page ? `${citation.section}, page ${citation.page}` : citation.section;
      announce(`Showing source ${number}, in ${where}, with the supporting sentence highlighted.`);
    } catch (err) {
      if (openedBy !== chip) return;
      if (err instanceof ApiError && err.status === 404) {
        renderRemoved(citation);
        announce("This document was removed. The quoted passage is shown.");
        return;
      }
      const message = err instanceof ApiError ? err.message : "The document could not be shown.";
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
    shownQuote = null;
  }

  // "Copy quote": the supporting sentence, in quotes, with where it is from.
  reportCopy.addEventListener("click", async () => {
    if (!shownQuote) return;
    const done = await copyText(`“${sentenceOf(shownQuote)}” — ${fullLabel(shownQuote)}`);
    reportCopy.textContent = done ? "Copied" : "Copy failed";
    announce(done ? "The quote is copied." : "The browser did not allow copying.");
    window.setTimeout(() => { reportCopy.textContent = "Copy quote"; }, 2000);
  });

  $("report-close").addEventListener("click", () => closeReport());
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (!report.hidden) closeReport();
    else if (!chats.hidden) { openChats(false); chatsToggle.focus(); }
    else if (!library.hidden && library.contains(document.activeElement)) openLibrary(false);
  });

  // The conversation open last comes back. Shown once the page's other deferred scripts have run, so
  // that they hear the forumqa:answer events of its answers too.
  document.addEventListener("DOMContentLoaded", fitPlaceholder);

  input.focus();
})();
