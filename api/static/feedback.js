// 👍/👎 under each answer, with an optional comment, sent to POST /api/feedback.
//
// app.js dispatches "forumqa:answer" on the document after it renders an answer, with
// {element, actions, answer, question, history}: `actions` is the answer's row of buttons
// (class "answer-actions"). The buttons are added only when GET /api/config says the server takes
// feedback. Text goes into the page as text nodes (textContent), never parsed as HTML.
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
      throw new Error("The server could not be reached. Try again.");
    }
    if (response.ok) return;
    let message = "";
    try {
      const data = await response.json();
      message = (data && data.error && data.error.message) || "";
    } catch (err) {
      message = "";
    }
    throw new Error(message || `The server answered ${response.status}.`);
  }

  // The earlier turns, cut to what the route accepts (the latest ones matter most for a follow-up).
  function recentHistory(history) {
    return (Array.isArray(history) ? history : []).slice(-HISTORY_TURNS)
      .map((t) => ({ role: t.role, content: String(t.content).slice(0, TURN_CHARS) }));
  }

  function feedbackControls({ answer, question, history }) {
    const box = el("div", { class: "feedback", role: "group", "aria-label": "Rate this answer" });
    const up = el("button", { type: "button", class: "button small feedback-rate", "aria-pressed": "false",
      "aria-label": "Good answer", title: "Good answer" }, thumb("up"));
    const down = el("button", { type: "button", class: "button small feedback-rate", "aria-pressed": "false",
      "aria-label": "Bad answer", title: "Bad answer" }, thumb("down"));
    const status = el("p", { class: "feedback-status", role: "status" });
    const commentId = `feedback-${Math.random().toString(36).slice(2)}`;
    const comment = el("textarea", { id: commentId, maxlength: COMMENT_LIMIT, rows: 2 });
    const label = el("label", { for: commentId });
    const submit = el("button", { type: "submit", class: "button small primary" }, "Send");
    const cancel = el("button", { type: "button", class: "button small" }, "Cancel");
    const form = el("form", { class: "feedback-form", hidden: true, novalidate: true },
      label, comment, el("div", { class: "feedback-buttons" }, submit, cancel));
    let rating = null;

    function choose(value) {
      rating = value;
      up.setAttribute("aria-pressed", String(value === "up"));
      down.setAttribute("aria-pressed", String(value === "down"));
      label.textContent = value === "up" ? "Anything to add? (optional)" : "What was wrong? (optional)";
      status.textContent = "";
      status.classList.remove("error");
      form.hidden = false;
      comment.focus();
    }

    up.addEventListener("click", () => choose("up"));
    down.addEventListener("click", () => choose("down"));
    cancel.addEventListener("click", () => {
      rating = null;
      up.setAttribute("aria-pressed", "false");
      down.setAttribute("aria-pressed", "false");
      form.hidden = true;
      up.focus();
    });
    comment.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!rating) return;
      submit.disabled = true;
      status.classList.remove("error");
      status.textContent = "Sending…";
      try {
        await send({
          question,
          answer_id: answer.answer_id,
          answer: answer.answer,
          verdict: answer.verdict,
          rating,
          comment: comment.value.trim(),
          history: recentHistory(history),
        });
      } catch (err) {
        status.textContent = `Not sent: ${err.message}`;
        status.classList.add("error");
        submit.disabled = false;
        return;
      }
      // One rating per answer: the choice stays shown, the controls are done.
      form.remove();
      up.disabled = true;
      down.disabled = true;
      status.textContent = rating === "up" ? "Thanks: marked as a good answer." : "Thanks: marked as a bad answer.";
    });
    box.append(up, down, status, form);
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
    }));
  });

  feedbackOn(); // asked at start-up, so the buttons appear with the first answer
})();
