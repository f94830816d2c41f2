"""The web page in a real headless Chromium (Debian's `chromium`, driven by Playwright).

Open the page with a token, start a run of a scripted model, watch its steps stream in, reload
while a tool call waits (the pending call comes back), approve it, and see the answer. The model
writes markup and script everywhere it can (thought, code, printed output, tool arguments, the
answer): all of it must show as text, and none of it may run. Screenshots go to the test's tmp
dir; CODEACT_SCREENSHOT_DOCS=1 also writes docs/server.png for the README.

These tests fail (never skip) where chromium or playwright is missing: scripts/install.sh
installs both (the `browser-tests` extra and the Debian package).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from codeact.models.scripted import ScriptedModel
from codeact.tools.tool import tool
from tests._isolation import require_sandbox
from tests.server._harness import TOKENS, Script, Server, code, config

pytestmark = require_sandbox()

ROOT = Path(__file__).resolve().parents[2]
XSS_IMG = '<img src=x onerror="window.__xss = 1">'
XSS_SCRIPT = "<script>window.__xss = 2</script>"


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("the browser tests need Debian's chromium: apt-get install chromium (scripts/install.sh "
                    "does it with the browser-tests extra)")
    return path


@pytest.fixture
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need playwright: pip install 'codeact[browser-tests]'")
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


@tool(needs_approval=True)
def send_email(to: str, body: str) -> str:
    """Send an email."""
    return f"sent to {to}"


def png(width: int = 8, height: int = 8) -> bytes:
    """A small red PNG, made here so the test needs no image library."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


SCRIPT = [
    f"Thought: look at this {XSS_IMG}\n```python\n# {XSS_SCRIPT}\nprint({XSS_IMG!r})\nx = 6 * 7\n"
    f"display(bytes.fromhex('{png().hex()}'))\n```",
    code(f"r = send_email('bob@example.com', {XSS_SCRIPT!r})\nprint(r)"),
    code(f"final_answer({XSS_SCRIPT!r} + ' ' + str(x))"),
]


PRIMES = [
    "Thought: First find the primes below 100 and add them up.\n```python\n"
    "primes = [n for n in range(2, 100) if all(n % d for d in range(2, int(n ** 0.5) + 1))]\n"
    "total = sum(primes)\nprint(len(primes), total)\n```",
    "Thought: Now email Bob the result; this call waits for approval.\n```python\n"
    "reply = send_email('bob@example.com', f'The primes below 100 add up to {total}.')\nprint(reply)\n```",
    code("final_answer(total)", thought="Bob has the number; answer with it."),
]


def open_page(browser, server, user="alice", **options):
    page = browser.new_page(**options)
    problems: list[str] = []
    page.on("dialog", lambda d: (problems.append("dialog: " + d.message), d.dismiss()))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.goto(f"http://127.0.0.1:{server.port}/#token={TOKENS[user]}")
    page.wait_for_selector("#app:not([hidden])")
    return page, problems


def test_watch_a_run_approve_its_call_and_see_the_answer(tmp_path, browser):
    shots = tmp_path / "shots"
    shots.mkdir()
    with Server(config(tmp_path, Script({"scripted": PRIMES}), tools=[send_email])) as server:
        page, problems = open_page(browser, server, viewport={"width": 1280, "height": 900})
        assert "token" not in page.url  # the token left the address bar

        page.fill("#task", "Email Bob the sum of the primes below 100, then answer with it.")
        page.click("#start")
        page.wait_for_selector("#timeline .step.done", timeout=60_000)  # step 1 streamed in
        page.wait_for_selector("button.approve", timeout=60_000)
        assert page.locator("#run-status").text_content() == "running"

        page.reload()  # the pending call is fetched again from the API
        page.wait_for_selector("button.approve", timeout=60_000)
        page.wait_for_selector("#timeline .step.done")
        assert page.locator("#timeline .step .step-index").all_text_contents()[:2] == ["Step 1", "Step 2"]
        assert page.locator(".tool-call.approval .tool-name").first.text_content() == "send_email"
        page.screenshot(path=str(shots / "waiting.png"), full_page=True)
        if os.environ.get("CODEACT_SCREENSHOT_DOCS"):
            (ROOT / "docs").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "docs" / "server.png"), full_page=False)
        page.click("button.approve")

        answer = page.wait_for_selector(".note.answer.success pre", timeout=60_000)
        assert answer.text_content() == "1060"
        page.wait_for_selector("#run-status.success")
        assert "sent to bob@example.com" in page.locator("#timeline").text_content()
        assert page.locator(".tool-call.approval .badge").first.text_content() == "approved"
        assert page.locator("#timeline .step.done").count() == 3
        assert page.locator("pre.code .tok-keyword").count() > 0  # highlighted code
        page.screenshot(path=str(shots / "done.png"), full_page=True)
        assert problems == []

        # A phone's width: one column, nothing wider than the screen.
        phone, problems = open_page(browser, server, viewport={"width": 390, "height": 844})
        phone.click("#runs li button")
        phone.wait_for_selector(".note.answer.success pre", timeout=60_000)
        phone.screenshot(path=str(shots / "phone.png"), full_page=True)
        assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        assert problems == []

    for name in ("waiting.png", "done.png", "phone.png"):
        assert (shots / name).stat().st_size > 5_000


def test_markup_and_script_from_a_run_show_as_text_and_run_nothing(tmp_path, browser):
    with Server(config(tmp_path, Script({"scripted": SCRIPT}), tools=[send_email])) as server:
        page, problems = open_page(browser, server)
        page.fill("#task", f"Answer 42 {XSS_IMG}")
        page.click("#start")
        page.wait_for_selector("button.deny", timeout=60_000)
        page.fill("input.deny-message", XSS_IMG)
        page.click("button.edit")
        page.fill("textarea.edit-args", json.dumps({"to": "eve@example.com", "body": XSS_SCRIPT}))
        page.click("button.edit")
        answer = page.wait_for_selector(".note.answer.success pre", timeout=60_000)
        page.screenshot(path=str(tmp_path / "xss.png"), full_page=True)

        # Everything the model wrote is on the page as the characters it wrote ...
        assert answer.text_content() == f"{XSS_SCRIPT} 42"
        timeline = page.locator("#timeline").text_content()
        assert XSS_IMG in timeline and XSS_SCRIPT in timeline and "sent to eve@example.com" in timeline
        assert page.locator("#run-task").text_content() == f"Answer 42 {XSS_IMG}"
        assert page.locator("pre.code .tok-comment").first.text_content() == f"# {XSS_SCRIPT}"
        # ... and nothing of it became markup, or ran.
        assert page.locator("#timeline img:not(.preview), #timeline script, #run-head img").count() == 0
        assert page.locator("img[src=x]").count() == 0
        assert page.evaluate("window.__xss") is None
        assert problems == []
        # The one image is the one the code showed, from the log, as a blob: URL.
        shown = page.locator("#timeline img.preview")
        assert shown.count() == 1 and shown.get_attribute("src").startswith("blob:")
        assert shown.evaluate("img => img.naturalWidth") == 8


def test_a_bad_token_shows_the_sign_in_form_and_a_good_one_the_page(tmp_path, browser):
    with Server(config(tmp_path, Script({"scripted": [code("final_answer(1)")]}))) as server:
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{server.port}/#token=wrong-token-000")
        page.wait_for_selector("#login:not([hidden])")
        assert page.locator("#app").is_hidden()
        page.fill("#token", TOKENS["bob"])
        page.click("#login-form button")
        page.wait_for_selector("#app:not([hidden])")
        assert page.locator("#who").text_content() == "bob"
        assert page.locator("#model option").all_text_contents() == ["scripted"]


def test_cancel_and_resume_from_the_page(tmp_path, browser):
    scripts = iter([[code("import time\ntime.sleep(120)")], [code("final_answer('after resume')")]])
    cfg = dataclasses.replace(config(tmp_path, Script({"scripted": []}), step_timeout=10),
                              models={"scripted": lambda: ScriptedModel(next(scripts), name="scripted")})
    with Server(cfg) as server:
        page, problems = open_page(browser, server, viewport={"width": 1024, "height": 800})
        page.fill("#task", "Sleep, then answer.")
        page.click("#start")
        page.wait_for_selector("#timeline pre.code", timeout=60_000)
        page.click("#cancel")
        page.wait_for_selector("#run-status.interrupted", timeout=60_000)
        assert page.locator("#cancel").is_hidden() and page.locator("#resume").is_visible()
        page.click("#resume")
        answer = page.wait_for_selector(".note.answer.success pre", timeout=60_000)
        assert answer.text_content() == "after resume"
        page.wait_for_selector("#run-status.success")
        assert page.locator(".note.resumed").count() == 1
        assert problems == []
