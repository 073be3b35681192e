"""Hostile documents: markup inside the corpus is indexed, served and shown as text, and never runs.

A copy of the corpus gets ``hostile.txt`` and ``guest-book.html``, full of script tags, event handlers,
``javascript:`` links and HTML entities. The API must return them as JSON strings, and the chat page,
in a real headless Chromium, must show them literally: no dialog opens, no payload sets its window
flag, no element is injected, and the page runs under the strict CSP without a violation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import chromium
from playwright.sync_api import Browser, Page, Route
from server_support import LiveServer

from api.main import create_app
from api.security import CSP, DOCS_CSP
from rag.config import Settings
from rag.qa import ForumQA

from .support import private_settings

STATIC = Path(__file__).resolve().parents[2] / "api" / "static"

# Every payload sets window.__pwned (and opens a dialog) if it ever runs.
SCRIPT = "<script>window.__pwned = 1; alert(1)</script>"
IMG = '<img src=x onerror="window.__pwned = 2; alert(2)">'
LINK = '<a href="javascript:window.__pwned = 3; alert(3)">the minutes</a>'
SVG = "<svg onload=window.__pwned=4>"
HOSTILE_TXT = f"""Security Review of the Forum Website

Findings of the Review

The security review of the forum website quoted the payload {SCRIPT} exactly as attackers had posted it.
The reviewers also found the image trick {IMG} hidden in a comment field of the guest book.
A message urged readers to open {LINK} but the address only ran a script in the browser.
Encoded forms such as &lt;script&gt; and &amp;amp; and &#60;b&#62; were kept as they were written.
The review concluded that the forum website had been repaired by the Korea Foundation in October.
"""
HOSTILE_HTML = """<!doctype html>
<html><head><title>Archived Guest Book</title><script>window.__pwned = 10; alert(10)</script></head>
<body onload="window.__pwned = 11">
<nav>Skip to main menu</nav>
<h1>Archived Guest Book</h1>
<p>The archived guest book recorded the entry &lt;script&gt;window.__pwned = 12; alert(12)&lt;/script&gt; \
from an anonymous visitor.</p>
<p>Another visitor left <img src=x onerror="window.__pwned = 13; alert(13)"> an image that never loaded.</p>
<p>The moderator of the guest book wrote <a href="javascript:window.__pwned = 14">a warning</a> about \
such links.</p>
<p>The guest book archive escaped &#x3C;svg onload=window.__pwned=15&#x3E; and &quot;quotes&quot; as \
entities.</p>
<script>window.__pwned = 16; alert(16)</script>
</body></html>
"""
DECODED_HTML = [  # what the loader makes of the entities: text that looks like markup
    "<script>window.__pwned = 12; alert(12)</script>",
    "<svg onload=window.__pwned=15>",
    '"quotes"',
]
QUESTIONS = {
    "hostile": "What payload did the security review of the forum website quote?",
    "guest-book": "What entry did the archived guest book record from an anonymous visitor?",
}
REDOC_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"  # built into redoc.standalone.js


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory, settings: Settings, qa: ForumQA) -> ForumQA:
    """A ForumQA over the report plus the two hostile documents (only they are embedded anew)."""
    hostile_settings = private_settings(tmp_path_factory.mktemp("hostile"), settings)
    (hostile_settings.corpus_dir / "hostile.txt").write_text(HOSTILE_TXT, encoding="utf-8")
    (hostile_settings.corpus_dir / "guest-book.html").write_text(HOSTILE_HTML, encoding="utf-8")
    return ForumQA.open(hostile_settings, progress=False)


@pytest.fixture(scope="module")
def live(hostile: ForumQA) -> Iterator[str]:
    with LiveServer(create_app(hostile.settings, hostile)) as server:
        yield server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


# ---------------------------------------------------------------------------------------- the API


def test_hostile_documents_are_indexed_as_plain_text(hostile: ForumQA, live: str) -> None:
    txt = httpx.get(f"{live}/api/documents/hostile", timeout=10)
    assert txt.headers["content-type"].startswith("application/json")
    text = txt.json()["text"]
    for payload in (SCRIPT, IMG, LINK, "&lt;script&gt;", "&amp;amp;", "&#60;b&#62;"):
        assert payload in text  # a .txt file is text: nothing is parsed, nothing decoded

    html = httpx.get(f"{live}/api/documents/guest-book", timeout=10).json()["text"]
    for decoded in DECODED_HTML:
        assert decoded in html
    for dropped in (
        "__pwned = 10",
        "__pwned = 11",
        "__pwned = 13",
        "__pwned = 14",
        "__pwned = 16",
        "onerror",
        "javascript:",
        "Skip to main menu",
    ):
        assert dropped not in html  # script elements, tags and attributes are not text


@pytest.mark.parametrize("doc_id", list(QUESTIONS))
def test_hostile_passages_are_cited_verbatim(live: str, doc_id: str) -> None:
    answer = httpx.post(f"{live}/api/answer", json={"question": QUESTIONS[doc_id]}, timeout=30).json()
    cited = [c for c in answer["citations"] if c["doc_id"] == doc_id]
    assert cited, answer
    document = httpx.get(f"{live}/api/documents/{doc_id}", timeout=10).json()["text"]
    for citation in cited:
        assert document[citation["start"] : citation["end"]] == citation["text"]
    assert "__pwned" in " ".join(c["text"] for c in cited)  # the payload travels, as a string


# ---------------------------------------------------------------------------------------- the page


def test_the_page_script_builds_no_html_from_strings() -> None:
    source = (STATIC / "app.js").read_text(encoding="utf-8")
    for sink in (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        'setTimeout("',
        "createContextualFragment",
        "DOMParser",
        ".href =",
        "srcdoc",
    ):
        assert sink not in source, f"app.js uses {sink}"
    html = (STATIC / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "index.html has an inline script"
    assert not re.search(r"\son[a-z]+\s*=", html), "index.html has an inline event handler"
    assert " style=" not in html, "index.html has an inline style (the CSP blocks it)"


def watch(page: Page) -> dict[str, list[str]]:
    """Record dialogs (and dismiss them), CSP violations, console errors and page errors."""
    seen: dict[str, list[str]] = {"dialogs": [], "console": [], "errors": []}

    def on_dialog(dialog: Any) -> None:
        seen["dialogs"].append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: seen["console"].append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    return seen


def ask(page: Page, question: str) -> None:
    answers = page.locator("#thread .message.assistant:not(.pending)")
    before = answers.count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    answers.nth(before).wait_for()


@pytest.mark.browser
def test_the_chat_page_shows_hostile_text_literally_and_runs_none_of_it(browser: Browser, live: str) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 860}, reduced_motion="reduce")
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        seen = watch(page)
        response = page.goto(live + "/")
        assert response is not None
        assert response.headers["content-security-policy"] == CSP
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"

        # A question that is itself a payload is shown as typed, too.
        ask(page, f"Was {SCRIPT} or {IMG} quoted?")
        assert f"Was {SCRIPT} or {IMG} quoted?" in page.locator("#thread .message.user").last.inner_text()

        for doc_id, question in QUESTIONS.items():
            ask(page, question)
            chip = page.locator(f"#thread .chip[data-doc='{doc_id}']").first
            chip.click()
            body = page.locator("#report-body")
            body.get_by_text("guest book" if doc_id == "guest-book" else "security review").first.wait_for()
            shown = body.inner_text()
            for payload in (
                [SCRIPT, IMG, LINK, "&lt;script&gt;", "&#60;b&#62;"] if doc_id == "hostile" else DECODED_HTML
            ):
                assert payload in shown, f"{payload!r} is not shown literally"
        answers = page.locator("#thread").inner_text()
        assert "__pwned" in answers  # the cited sentences, payload included, are on the page as text

        injected = page.locator(
            "#thread script, #thread img, #thread svg, #thread iframe, #report-body script, "
            "#report-body img, #report-body svg, #report-body iframe, a[href^='javascript'], "
            "[onerror], [onload], [onclick]"
        )
        assert injected.count() == 0
        page.wait_for_timeout(300)  # time for an onerror of an image that failed to load
        assert page.evaluate("window.__pwned") is None
        assert seen["dialogs"] == []
        assert seen["errors"] == []
        assert not [m for m in seen["console"] if "Content Security Policy" in m], seen["console"]
    finally:
        context.close()


@pytest.mark.browser
def test_the_strict_policy_blocks_a_script_that_got_in(browser: Browser, live: str) -> None:
    """Defence in depth: even markup injected into the page could not run a script under the CSP."""
    context = browser.new_context()
    try:
        page = context.new_page()
        seen = watch(page)
        page.goto(live + "/")
        page.evaluate(
            """() => {
                const div = document.createElement("div");
                div.innerHTML = '<img src="x" onerror="window.__pwned = 20; alert(20)">';
                document.body.append(div);
                const s = document.createElement("script");
                s.textContent = "window.__pwned = 21";
                document.body.append(s);
            }"""
        )
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None
        assert seen["dialogs"] == []
        assert any("Content Security Policy" in m for m in seen["console"]), seen["console"]
    finally:
        context.close()


def offline(page: Page, live: str) -> list[str]:
    """Abort every request that does not go to ``live``; the list of aborted URLs fills as they come."""
    aborted: list[str] = []

    def only_loopback(route: Route) -> None:
        if route.request.url.startswith(live + "/"):
            route.continue_()
        else:
            aborted.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    return aborted


@contextmanager
def docs_page(
    browser: Browser, live: str, path: str
) -> Iterator[tuple[Page, dict[str, list[str]], list[str]]]:
    """A page at ``live + path``, cut off from every other host, served under the docs policy.

    Yields the page, what :func:`watch` records and the requests :func:`offline` aborted.
    """
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        seen = watch(page)
        aborted = offline(page, live)
        response = page.goto(live + path)
        assert response is not None
        assert response.headers["content-security-policy"] == DOCS_CSP
        yield page, seen, aborted
    finally:
        context.close()


def csp_violations(console: list[str], allowed: tuple[str, ...] = ()) -> list[str]:
    return [m for m in console if "Content Security Policy" in m and not any(a in m for a in allowed)]


@pytest.mark.browser
def test_docs_page_runs_under_its_own_policy(browser: Browser, live: str) -> None:
    """/docs shows the API with no network but this server, and its policy allows all it does."""
    with docs_page(browser, live, "/docs") as (page, seen, aborted):
        page.locator(".swagger-ui .opblock").first.wait_for()
        assert page.locator(".swagger-ui .opblock").count() > 0
        page.locator(".opblock-summary-path", has_text=re.compile(r"^/api/answer$")).wait_for()
        assert page.locator(".swagger-ui .info .title").inner_text().startswith("forum-qa")
        page.wait_for_load_state("networkidle")
        assert aborted == []
        assert csp_violations(seen["console"]) == [], seen["console"]
        assert seen["errors"] == []

        # The same inline start-up script is refused under the policy of every other page.
        page.goto(live + "/")
        page.evaluate("""() => {
            const s = document.createElement("script");
            s.textContent = "window.__inline = 1";
            document.body.append(s);
        }""")
        assert page.evaluate("window.__inline") is None


@pytest.mark.browser
def test_redoc_page_runs_under_the_docs_policy(browser: Browser, live: str) -> None:
    """/redoc shows the API, its search worker included, with no network but this server."""
    with docs_page(browser, live, "/redoc") as (page, seen, aborted):
        page.get_by_role("heading", name="forum-qa (0.1.0)").wait_for()
        page.get_by_role("heading", name="Answer with citations").wait_for()  # an operation
        page.get_by_placeholder("Search...").fill("citations")  # runs in ReDoc's blob: worker
        page.locator("[role=search] li").first.wait_for()
        page.wait_for_load_state("networkidle")
        assert aborted == []
        # The only thing the policy stops: ReDoc's attribution logo from cdn.redoc.ly, which it then
        # leaves out (the link stays, as text). Nothing else is refused.
        assert csp_violations(seen["console"], allowed=(REDOC_LOGO,)) == [], seen["console"]
        assert seen["errors"] == []


@pytest.mark.browser
def test_with_an_api_key_the_page_shows_the_401_message(browser: Browser, hostile: ForumQA) -> None:
    """The page cannot know the key: with FORUMQA_API_KEY set it shows the API's 401 message."""
    keyed = create_app(hostile.settings.model_copy(update={"api_key": "page-cannot-know"}), hostile)
    with LiveServer(keyed) as server:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(20_000)
            page.goto(server.url + "/")
            page.fill("#question", "When did the Third Korea-Russia Forum take place?")
            page.press("#question", "Enter")
            error = page.locator("#thread .message.error")
            error.wait_for()
            assert "API key" in error.inner_text()
        finally:
            context.close()
