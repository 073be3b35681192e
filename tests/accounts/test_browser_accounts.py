"""Signing in and out on the chat page, in Debian's Chromium: the form, a wrong password, who is signed
in, what the role may do, the first answer within 2 s of signing in, and signing out."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from accounts_support import ALPHA_ID, BETA_ID, PASSWORDS, LiveSite
from browser_support import ask
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.browser


@pytest.fixture
def page(browser: Browser, live_site: LiveSite, artifacts) -> Iterator[Page]:  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1280, "height": 900}, reduced_motion="reduce")
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" and "401" not in m.text
            and "403" not in m.text else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(live_site.url + "/")
    yield page
    context.close()
    assert errors == [], errors


def sign_in(page: Page, user: str, password: str) -> None:
    page.fill("#signin-user", user)
    page.fill("#signin-password", password)
    page.click("#signin-send")


def test_sign_in_ask_and_sign_out(page: Page, artifacts) -> None:  # type: ignore[no-untyped-def]
    form = page.locator("#signin")
    expect(form).to_be_visible()
    expect(page.locator("#welcome")).to_be_hidden()
    expect(page.locator("#who")).to_be_hidden()
    page.screenshot(path=str(artifacts / "accounts-signin.png"))

    sign_in(page, "alice", "not-her-password")
    expect(page.locator("#signin-error")).to_contain_text("wrong user name or password")
    expect(page.locator("#signin-password")).to_have_value("")

    started = time.perf_counter()
    sign_in(page, "Alice", PASSWORDS["alice"])
    expect(page.locator("#who")).to_have_text("Signed in as alice (reader)")
    expect(form).to_be_hidden()
    answer = ask(page, "How many containers did the Alpha harbor crane lift?")
    first_answer = time.perf_counter() - started
    expect(answer).to_contain_text("912")
    print(f"sign-in to first answer on the page: {first_answer:.2f} s")
    assert first_answer <= 2.0
    # The session cookie is out of the page's reach (HttpOnly).
    assert "forumqa_session" not in page.evaluate("document.cookie")

    page.get_by_role("button", name="Documents", exact=True).click()
    expect(page.locator(f'#doc-list li[data-doc="{ALPHA_ID}"]')).to_be_visible()
    expect(page.locator("#doc-list li")).to_have_count(1)
    expect(page.locator(f'#doc-list li[data-doc="{BETA_ID}"]')).to_have_count(0)
    expect(page.locator("#upload-form")).to_be_hidden()  # a reader adds nothing
    expect(page.locator(".doc-remove")).to_have_count(0)
    page.screenshot(path=str(artifacts / "accounts-signed-in.png"))

    page.click("#sign-out")
    expect(form).to_be_visible()
    expect(page.locator("#who")).to_be_hidden()
    expect(page.locator("#doc-list li")).to_have_count(0)
    response = page.request.get(page.url.rstrip("/") + "/api/documents")
    assert response.status == 401  # the cookie is gone, on the server too
    # Alice's conversation is hers: hidden once she signs out, back when she signs in again...
    expect(page.locator("#thread > .message")).to_have_count(0)
    sign_in(page, "alice", PASSWORDS["alice"])
    expect(page.locator("#thread > .message.assistant")).to_contain_text("912")
    page.click("#sign-out")
    expect(form).to_be_visible()
    # ...and another user signing in on this browser never sees it (it is deleted from the browser).
    sign_in(page, "bea", PASSWORDS["bea"])
    expect(page.locator("#who")).to_have_text("Signed in as bea (reader)")
    expect(page.locator("#thread > .message")).to_have_count(0)
    page.click("#chats-toggle")
    expect(page.locator("#chat-list li")).to_have_count(0)
    assert "912" not in (page.evaluate("localStorage.getItem('forumqa.conversations')") or "")


def test_an_editor_sees_upload_and_remove_for_their_collection(page: Page) -> None:
    sign_in(page, "ed", PASSWORDS["ed"])
    expect(page.locator("#who")).to_have_text("Signed in as ed (editor)")
    page.get_by_role("button", name="Documents", exact=True).click()
    expect(page.locator("#upload-form")).to_be_visible()
    expect(page.locator(f'#doc-list li[data-doc="{ALPHA_ID}"] .doc-remove')).to_be_visible()
    expect(page.locator("#upload-collection-label")).to_be_hidden()  # one collection to write: no choice
    expect(page.locator("#upload-collection option")).to_have_text(["alpha"])


def test_a_question_with_the_session_but_without_the_csrf_proof_is_refused(page: Page) -> None:
    """The page's own fetch sends the proof; a bare fetch with the same cookie (as a forged request would
    be, were SameSite to let the cookie through) is refused."""
    sign_in(page, "alice", PASSWORDS["alice"])
    expect(page.locator("#who")).to_be_visible()
    status = page.evaluate("""async () => {
        const response = await fetch('/api/answer', {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({question: 'crane'})});
        return response.status;
    }""")
    assert status == 200  # the page's fetch adds the proof
    raw = page.evaluate("""async () => {
        const frame = document.createElement('iframe');
        document.body.append(frame);
        const response = await frame.contentWindow.fetch('/api/answer', {method: 'POST',
            headers: {'Content-Type': 'application/json'}, body: JSON.stringify({question: 'crane'})});
        const body = await response.json();
        frame.remove();
        return [response.status, body.error.type];
    }""")
    assert raw == [403, "csrf"]
