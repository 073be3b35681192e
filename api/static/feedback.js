// 👍/👎 under each answer, stored as soon as one is pressed (POST /api/feedback), with an optional
// comment afterwards that amends the same rating; the rating can be changed.
//
// app.js dispatches "forumqa:answer" on the document after it renders an answer, with
// {element, actions, answer, question, history, feedback, keepFeedback}: `actions` is the answer's row of
// buttons (class "answer-actions"), `feedback` the rating kept with the answer in the conversation
// ({rating, comment, saved}) or null, and `keepFeedback(feedback)` keeps a new one there (localStorage),
// so that a rating is shown again after a reload and can still be changed. Each change is posted whole:
// the server keeps every post, and the newest of an answer_id supersedes the earlier ones.
//
// The buttons are added only when GET /api/config says the server takes feedback. Text goes into the page
// as text nodes (textContent), never parsed as HTML.
"use strict";

(() => {
  const COMMENT_LIMIT = 1000; // api/schemas.py MAX_FEEDBACK_COMMENT_CHARS
  const HISTORY_TURNS = 20; // MAX_FEEDBACK_TURNS
  const TURN_CHARS = 4000; // MAX_FEEDBACK_TURN_CHARS
  let enabled = null; // Promise<boolean>, asked once

  function feedbackOn() {
    if (!enabled) {
      enabled = fetch("/api/config", { headers: { Accept: "application/json" } })
        .then((response) => (response.ok ? response.json() : {}))
        .then((config) => Boolean(config && config.feedback))
        .catch(() => false);
    }
    return enabled;
  }

  // The page's one way of making elements (app.js, loaded first): attributes set, children as text nodes.
  const { el } = window.forumqaPage;

  // Thumbs drawn as SVG (Feather's thumbs-up and thumbs-down, MIT licence): emoji fonts are not on every
  // system, and a missing glyph would leave an empty box.
  const THUMBS = {
    up: "M14 9V5a3 3 0 0 0-3-3l-4 9v11h11.28a2 2 0 0 0 2-1.7l1.38-9a2 2 0 0 0-2-2.3zM7 22H4a2 2 0 0 1-2-2v-7a2 2 0 0 1 2-2h3",
    down: "M10 15v4a3 3 0 0 0 3 3l4-9V2H5.72a2 2 0 0 0-2 1.7l-1.38 9a2 2 0 0 0 2 2.3zm7-13h2.67A2.31 2.31 0 0 1 22 4v7a2.31 2.31 0 0 1-2.33 2H17",
  };
  const SAID = { up: "a good answer", down: "a bad answer" };

  function thumb(direction) {
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    for (const [name, value] of Object.entries({ viewBox: "0 0 24 24", width: 18, height: 18, fill: "none",
      stroke: "currentColor", "stroke-width": 2, "stroke-linecap": "round", "stroke-linejoin": "round",
      "aria-hidden": "true", focusable: "false" })) svg.setAttribute(name, String(value));
    const path = document.createElementNS(ns, "path");
    path.setAttribute("d", THUMBS[direction]);
    svg.append(path);
    return svg;
  }

  async function send(body) {
    let response;
    try {
      response = await fetch("/api/feedback", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
    } catch (err) {
      throw new Error("the server could not be reached. Try again.");
    }
    if (response.ok) return;
    let message = "";
    try {
      const data = await response.json();
      message = (data && data.error && data.error.message) || "";
    } catch (err) {
      message = "";
    }
    throw new Error(message || `the server answered ${response.status}.`);
  }

  // The earlier turns, cut to what the route accepts (the latest ones matter most for a follow-up).
  function recentHistory(history) {
    return (Array.isArray(history) ? history : []).slice(-HISTORY_TURNS)
      .map((t) => ({ role: t.role, content: String(t.content).slice(0, TURN_CHARS) }));
  }

  function feedbackControls({ answer, question, history, kept, keep }) {
    const box = el("div", { class: "feedback", role: "group", "aria-label": "Rate this answer" });
    const up = el("button", { type: "button", class: "button small feedback-rate", "aria-pressed": "false",
      "aria-label": "Good answer", title: "Good answer" }, thumb("up"));
    const down = el("button", { type: "button", class: "button small feedback-rate", "aria-pressed": "false",
      "aria-label": "Bad answer", title: "Bad answer" }, thumb("down"));
    const status = el("p", { class: "feedback-status", role: "status" });
    const more = el("button", { type: "button", class: "button small feedback-more", hidden: true });
    const commentId = `feedback-${Math.random().toString(36).slice(2)}`;
    const comment = el("textarea", { id: commentId, maxlength: COMMENT_LIMIT, rows: 2 });
    const label = el("label", { for: commentId });
    const submit = el("button", { type: "submit", class: "button small primary" }, "Send comment");
    const cancel = el("button", { type: "button", class: "button small" }, "Cancel");
    const form = el("form", { class: "feedback-form", hidden: true, novalidate: true },
      label, comment, el("div", { class: "feedback-buttons" }, submit, cancel));
    // What the server has (the last rating stored), and what is being sent now.
    let saved = kept && kept.saved ? { rating: kept.rating, comment: kept.comment || "" } : null;
    let sending = 0;

    function show(rating) {
      up.setAttribute("aria-pressed", String(rating === "up"));
      down.setAttribute("aria-pressed", String(rating === "down"));
    }

    function settled(text, error = false) {
      status.textContent = text;
      status.classList.toggle("error", error);
      more.hidden = !saved;
      if (saved) more.textContent = saved.comment ? "Edit comment" : "Add a comment";
    }

    function describe() {
      if (!saved) return "";
      return `Saved: ${SAID[saved.rating]}${saved.comment ? ", with your comment" : ""}. You can change it.`;
    }

    // Posts `rating` with `text` as the comment; the newest post of this answer is the one that counts.
    async function store(rating, text) {
      const mine = ++sending;
      show(rating);
      status.classList.remove("error");
      status.textContent = "Saving…";
      try {
        await send({
          question,
          answer_id: answer.answer_id,
          answer: answer.answer,
          verdict: answer.verdict,
          rating,
          comment: text,
          history: recentHistory(history),
        });
      } catch (err) {
        if (mine !== sending) return false;
        show(saved ? saved.rating : null);
        settled(`Not saved: ${err.message.charAt(0).toLowerCase()}${err.message.slice(1)}`, true);
        return false;
      }
      saved = { rating, comment: text };
      keep({ rating, comment: text, saved: true });
      if (mine === sending) settled(describe());
      return true;
    }

    function rate(rating) {
      if (saved && saved.rating === rating && !status.classList.contains("error")) return; // already so
      store(rating, saved ? saved.comment : "");
    }

    function openComment() {
      const rating = saved ? saved.rating : "down";
      label.textContent = rating === "up" ? "Anything to add? (optional)" : "What was wrong? (optional)";
      comment.value = saved ? saved.comment : "";
      form.hidden = false;
      more.hidden = true;
      comment.focus({ preventScroll: true });
      form.scrollIntoView({ block: "nearest" });
    }

    function closeComment() {
      form.hidden = true;
      more.hidden = !saved;
    }

    up.addEventListener("click", () => rate("up"));
    down.addEventListener("click", () => rate("down"));
    more.addEventListener("click", openComment);
    cancel.addEventListener("click", () => {
      closeComment();
      more.focus();
    });
    comment.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
      else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        closeComment();
        more.focus();
      }
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!saved) return;
      submit.disabled = true;
      const done = await store(saved.rating, comment.value.trim());
      submit.disabled = false;
      if (done) {
        closeComment();
        more.focus();
      }
    });

    show(saved ? saved.rating : null);
    if (saved) settled(`You rated this ${SAID[saved.rating]}${saved.comment ? ", with a comment" : ""}. You can change it.`);
    box.append(up, down, status, more, form);
    return box;
  }

  document.addEventListener("forumqa:answer", async (event) => {
    const detail = event.detail || {};
    if (!detail.actions || !detail.answer || !detail.answer.answer_id) return;
    if (!(await feedbackOn())) return;
    detail.actions.append(feedbackControls({
      answer: detail.answer,
      question: detail.answer.question || detail.question, // as the server read it (trimmed)
      history: detail.history,
      kept: detail.feedback,
      keep: typeof detail.keepFeedback === "function" ? detail.keepFeedback : () => {},
    }));
  });

  feedbackOn(); // asked at start-up, so the buttons appear with the first answer
})();
