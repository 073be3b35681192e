"""Time from Enter to the answer on the chat page: this page against another revision's, in one run.

    python -m bench.page [--base main] [--rounds 2] [--index-dir index]

One real ``forumqa serve`` (feedback on, so the 👍/👎 script runs too) serves both pages: this tree's
``api/static`` as it is, and ``--base``'s (``git show``) through the browser's request routing, so the
server, the answers and the machine are the same for both. Debian's Chromium (Playwright, as the browser
tests) asks the dev set's English questions, each in a new chat, alternating old and new page question
by question so that both see the same load. The time is from the Enter keydown in the question box to the
first frame after the answer's message replaced the placeholder (``performance.now()`` in the page).

Two series: the answer cache on and warm (every question asked once before: the server's share is a
look-up, so the page's own work shows), and the cache off (``FORUMQA_CACHE_SIZE=0``). The load average is
printed before and after.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.common import ROOT, Latency, dev_questions, format_table, log, ms, start_server

STATIC = ROOT / "api" / "static"

# Runs in every page before its own scripts: the Enter that sends, then the first frame after an answer
# (or an error) replaced the pending message.
PROBE = """
window.__enterToAnswer = [];
let started = null;
document.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey && e.target && e.target.id === "question") started = performance.now();
}, true);
const answered = () => document.querySelectorAll("#thread > .message.assistant:not(.pending)").length;
let seen = 0;
new MutationObserver(() => {
  const now = answered();
  if (now > seen && started !== null) {
    const from = started;
    started = null;
    requestAnimationFrame(() => window.__enterToAnswer.push(performance.now() - from));
  }
  seen = now;
}).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ["class"] });
"""


def base_bundle(ref: str, into: Path) -> Path:
    """``ref``'s api/static files, written into ``into``."""
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{ref}:api/static"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in names:
        data = subprocess.run(["git", "show", f"{ref}:api/static/{name}"], cwd=ROOT, check=True,
                              capture_output=True).stdout
        (into / name).write_bytes(data)
    return into


def serve_from(folder: Path) -> Any:
    """A Playwright route handler answering / and /static/* from ``folder``."""
    types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}

    def handle(route: Any) -> None:
        path = route.request.url.split("://", 1)[1].split("/", 1)[1].split("?", 1)[0]
        name = "index.html" if path in ("", "/") else path.removeprefix("static/")
        file = folder / name
        if not file.is_file():
            route.continue_()
            return
        route.fulfill(status=200, body=file.read_bytes(), content_type=types.get(file.suffix, "text/plain"))

    return handle


def ask(page: Any, question: str) -> None:
    from playwright.sync_api import expect

    answers = page.locator("#thread > .message.assistant:not(.pending)")
    before = answers.count()
    page.locator("#question").fill(question)
    page.locator("#question").press("Enter")
    expect(answers).to_have_count(before + 1)
    expect(page.locator("#composer")).to_have_attribute("aria-busy", "false")


def measure(url: str, base: Path, questions: list[str], rounds: int) -> dict[str, list[float]]:
    """{"base": [...], "this": [...]}: seconds from Enter to the answer shown, per question and round."""
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from browser_support import chromium

    out: dict[str, list[float]] = {"base": [], "this": []}
    with chromium() as browser:
        pages = {}
        for name in out:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, reduced_motion="reduce")
            context.add_init_script(PROBE)
            if name == "base":  # only the page's own files: the API goes to the server untouched
                context.route(url + "/", serve_from(base))
                context.route("**/static/**", serve_from(base))
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(url + "/")
            pages[name] = page
        turn = 0
        for _ in range(rounds):
            for question in questions:
                turn += 1
                for name in ("base", "this") if turn % 2 else ("this", "base"):
                    page = pages[name]
                    page.get_by_role("button", name="New chat").click()
                    ask(page, question)
        for name, page in pages.items():
            out[name] = [t / 1000 for t in page.evaluate("window.__enterToAnswer")]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.page", description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="main", help="the revision whose page to compare with (main)")
    parser.add_argument("--rounds", type=int, default=2, help="times each question is asked per series")
    parser.add_argument("--index-dir", type=Path, default=ROOT / "index", help="a built index (index)")
    args = parser.parse_args(argv)
    questions = [q.text for q in dev_questions() if q.lang == "en" and not q.history]
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="forumqa-page-") as tmp:
        base = base_bundle(args.base, Path(tmp))
        for series, env in (("cache on (warm)", {}), ("cache off", {"FORUMQA_CACHE_SIZE": "0"})):
            env = {**env, "FORUMQA_FEEDBACK": "1", "FORUMQA_RATE_LIMIT_PER_MINUTE": "0"}
            with start_server(args.index_dir, env=env) as server:
                server.wait_ready(timeout=600)
                if series.startswith("cache on"):  # every answer cached before timing
                    measure(server.base_url, base, questions, 1)
                log(f"page: {series}, {len(questions)} questions × {args.rounds} rounds, base {args.base}")
                times = measure(server.base_url, base, questions, args.rounds)
            for name in ("base", "this"):
                lat = Latency.of(times[name])
                rows.append([series, f"{args.base} page" if name == "base" else "this page", lat.n,
                             ms(lat.p50), ms(lat.p95), ms(lat.mean)])
    load_after = os.getloadavg()
    print(format_table("Enter to the answer on the page (Chromium, 1280×900)",
                       ["series", "page", "n", "p50", "p95", "mean"], rows))
    print(f"load average (1, 5, 15 min): before {', '.join(f'{x:.2f}' for x in load_before)}; "
          f"after {', '.join(f'{x:.2f}' for x in load_after)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
