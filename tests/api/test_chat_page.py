"""The chat page at GET /, driven in a real headless Chromium through Playwright.

Every test runs against a real `rag serve` over the real seed index (the session
`live_server`, or a private server where the test stops it). Each test saves a
screenshot under its pytest `tmp_path`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Route, expect, sync_playwright

from tests.servers import ROOT, Server, serve

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
STATIC = ROOT / "api" / "static"

SEED_QUESTION = "Who is Nikita Smagin?"
OTHER_SEED_QUESTION = "What did Russia's Foreign Ministry say about the protests?"
OUT_OF_CORPUS = "Who won the 2018 FIFA World Cup?"
NO_ANSWER_TEXT = "The articles don't answer this."

expect.set_options(timeout=15_000)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@dataclass
class Chat:
    """A page on the chat app, with what went wrong in it recorded."""

    page: Page
    url: str
    shots: Path
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def open(self) -> Chat:
        self.page.goto(f"{self.url}/")
        expect(self.input).to_be_focused()
        return self

    @property
    def input(self):
        return self.page.get_by_label("Your question")

    @property
    def send_button(self):
        return self.page.locator("#send")

    @property
    def turns(self):
        return self.page.locator("#conversation .turn")

    def ask(self, question: str, *, wait: bool = True):
        """Type a question, press Enter, and wait until its reply is no longer pending."""
        count = self.turns.count()
        self.input.fill(question)
        self.input.press("Enter")
        expect(self.turns).to_have_count(count + 1)
        turn = self.turns.nth(count)
        if wait:
            expect(turn.locator(".reply")).not_to_have_attribute("data-state", "searching")
        return turn

    def shot(self, name: str) -> Path:
        path = self.shots / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=False)
        assert path.stat().st_size > 1000
        return path


def _new_chat(
    browser: Browser, url: str, shots: Path, **context_args
) -> tuple[BrowserContext, Chat]:
    context = browser.new_context(viewport=context_args.pop("viewport", DESKTOP), **context_args)
    page = context.new_page()
    chat = Chat(page, url, shots)
    page.on("pageerror", lambda exc: chat.page_errors.append(str(exc)))
    page.on("request", lambda request: chat.requests.append(request.url))

    def on_dialog(dialog) -> None:
        chat.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    return context, chat


@pytest.fixture
def make_chat(browser: Browser, tmp_path: Path):
    """Factory for pages in fresh contexts (empty local storage); closes them after."""
    contexts: list[BrowserContext] = []
    chats: list[Chat] = []

    def make(url: str, **context_args) -> Chat:
        context, chat = _new_chat(browser, url, tmp_path, **context_args)
        contexts.append(context)
        chats.append(chat)
        return chat

    yield make
    for context in contexts:
        context.close()
    for chat in chats:
        assert chat.page_errors == [], f"JavaScript errors on the page: {chat.page_errors}"
        assert chat.dialogs == [], f"unexpected dialogs: {chat.dialogs}"


@pytest.fixture
def chat(make_chat, live_server: Server) -> Chat:
    return make_chat(live_server.url).open()


def api_ask(server: Server, question: str) -> dict:
    response = httpx.post(f"{server.url}/ask", json={"question": question}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def chip_label(source: str, paragraph: int) -> str:
    return f"{source} ¶{paragraph}"


# ---------------------------------------------------------------- tests


@pytest.mark.browser
def test_page_is_served_with_no_external_resources(chat: Chat, live_server: Server) -> None:
    page = chat.page
    expect(page).to_have_title(re.compile("Seeds QA"))
    expect(page.locator("#intro")).to_be_visible()
    expect(page.get_by_role("button", name=SEED_QUESTION)).to_be_visible()
    expect(page.get_by_role("button", name="Send question")).to_be_enabled()
    expect(page.get_by_role("log", name="Conversation")).to_have_attribute("aria-live", "polite")
    chat.ask(SEED_QUESTION)
    chat.shot("served")
    assert chat.requests, "no requests recorded"
    outside = [url for url in chat.requests if not url.startswith(live_server.url)]
    assert outside == [], f"the page fetched from outside its server: {outside}"
    for name in ("app.js", "index.html"):
        source = (STATIC / name).read_text()
        assert not re.search(r"\.(innerHTML|outerHTML)\s*\+?=", source), name
        assert not re.search(r"insertAdjacentHTML\s*\(|document\.write\s*\(", source), name
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", source), name


@pytest.mark.browser
def test_seed_question_shows_answer_chip_and_highlighted_source(
    chat: Chat, live_server: Server
) -> None:
    expected = api_ask(live_server, SEED_QUESTION)
    assert expected["answer"], "the seed question should have an answer"
    first = expected["citations"][0]
    answer_source = expected["answer_source"]

    turn = chat.ask(SEED_QUESTION)
    expect(turn.locator("[data-role=question]")).to_have_text(f"You asked: {SEED_QUESTION}")
    reply = turn.locator(".reply")
    expect(reply).to_have_attribute("data-state", "answer")
    expect(reply.locator("[data-role=answer]")).to_have_text(expected["answer"])
    expect(chat.input).to_be_focused()

    # One chip per citation, labelled "file ¶n", with its score; "also in" for duplicates.
    chips = reply.locator(".sources .chips > li > .chip")
    expect(chips).to_have_count(len(expected["citations"]))
    for i, citation in enumerate(expected["citations"]):
        chip = chips.nth(i)
        expect(chip.locator(".chip-label")).to_have_text(
            chip_label(citation["source"], citation["paragraph"])
        )
        expect(chip.locator(".chip-score")).to_have_text(f"{citation['score']:.2f}")
    also = [ref for c in expected["citations"] for ref in c["also_in"]]
    assert also, "the seed question is expected to fold a duplicate paragraph"
    also_chips = reply.locator(".sources .chips .also-in .chip-label")
    expect(also_chips).to_have_text([chip_label(r["source"], r["paragraph"]) for r in also])
    expect(reply.locator(".sources .chips .also-in").first).to_contain_text("also in")
    chat.shot("answer")

    # The chip opens the paragraph in its article, with the answer highlighted.
    source_requests = lambda: [u for u in chat.requests if "/sources/" in u]  # noqa: E731
    primary = reply.locator(".chip-primary")
    expect(primary.locator(".chip-label")).to_have_text(
        chip_label(answer_source["source"], answer_source["paragraph"])
    )
    primary.click()
    dialog = chat.page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("#source-title")).to_have_text(first["source"])
    mark = dialog.locator("mark")
    expect(mark).to_have_count(1)
    expect(mark).to_have_text(expected["answer"])
    target = dialog.locator(".para.is-target")
    expect(target).to_have_attribute("data-paragraph", str(first["paragraph"]))
    # The mark sits at the exact offsets given by answer_source.
    before = target.locator(".para-text").evaluate(
        "(el) => { const r = document.createRange(); r.setStart(el, 0);"
        " r.setEndBefore(el.querySelector('mark')); return r.toString(); }"
    )
    assert len(before) == answer_source["start"] - first["start"]
    # Surrounding paragraphs are shown too.
    assert dialog.locator(".para").count() > 1
    expect(dialog.locator(f'.para[data-paragraph="{first["paragraph"] - 1}"]')).to_be_visible()
    expect(mark).to_be_in_viewport()
    chat.shot("source-highlight")

    # Escape closes it and focus goes back to the chip; the source is fetched once.
    chat.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(primary).to_be_focused()
    assert len(source_requests()) == 1
    primary.click()
    expect(dialog.locator("mark")).to_have_text(expected["answer"])
    chat.page.keyboard.press("Escape")
    assert len(source_requests()) == 1, "GET /sources/{name} should be cached per source"

    # An "also in" chip opens the duplicate's paragraph with the same words marked.
    ref = also[0]
    reply.locator(".sources .chips .also-in .chip").first.click()
    expect(dialog.locator("#source-title")).to_have_text(ref["source"])
    expect(dialog.locator(".para.is-target")).to_have_attribute(
        "data-paragraph", str(ref["paragraph"])
    )
    chat.page.get_by_role("button", name="Close source").click()
    expect(dialog).to_be_hidden()


@pytest.mark.browser
def test_chips_and_dialog_work_from_the_keyboard(chat: Chat) -> None:
    turn = chat.ask(SEED_QUESTION)
    chip = turn.locator(".chip-primary")
    chip.focus()
    chat.page.keyboard.press("Enter")
    dialog = chat.page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("mark")).to_be_visible()
    # Focus is inside the modal dialog.
    assert dialog.evaluate("(d) => d.contains(document.activeElement)")
    chat.shot("keyboard-dialog")
    chat.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(chip).to_be_focused()
    # Space works too, and the whole article can be expanded.
    chat.page.keyboard.press(" ")
    expect(dialog).to_be_visible()
    total = chat.page.evaluate(
        "async (n) => (await (await fetch('sources/' + n)).json()).paragraphs.length",
        chip.get_attribute("data-source"),
    )
    dialog.get_by_role("button", name="Show the whole article").click()
    expect(dialog.locator(".para")).to_have_count(total)
    chat.page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


@pytest.mark.browser
def test_out_of_corpus_question_says_so_and_offers_closest_passages(
    chat: Chat, live_server: Server
) -> None:
    expected = api_ask(live_server, OUT_OF_CORPUS)
    assert expected["answer"] is None
    turn = chat.ask(OUT_OF_CORPUS)
    reply = turn.locator(".reply")
    expect(reply).to_have_attribute("data-state", "no-answer")
    expect(reply.locator("[data-role=no-answer]")).to_have_text(NO_ANSWER_TEXT)
    expect(reply.locator("[data-role=answer]")).to_have_count(0)
    assert expected["citations"], "the API returns closest passages for this question"
    passages = reply.locator(".passage")
    expect(passages).to_have_count(len(expected["citations"]))
    expect(passages.first.locator(".passage-text")).to_have_text(expected["citations"][0]["text"])
    expect(passages.first.locator(".chip-label")).to_have_text(
        chip_label(expected["citations"][0]["source"], expected["citations"][0]["paragraph"])
    )
    more = reply.get_by_role("button", name=re.compile(r"Show \d+ more"))
    if len(expected["citations"]) > 3:
        more.click()
        expect(reply.locator(".passage:visible")).to_have_count(len(expected["citations"]))
    chat.shot("no-answer")


@pytest.mark.browser
def test_xss_payload_in_a_question_renders_as_text(chat: Chat) -> None:
    payload = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2; alert(1)">'
    turn = chat.ask(payload)
    expect(turn.locator("[data-role=question]")).to_have_text(f"You asked: {payload}")
    expect(chat.page.get_by_text(payload)).to_be_visible()

    def assert_inert() -> None:
        assert chat.page.evaluate("typeof window.__xss") == "undefined"
        assert chat.page.locator("#conversation img, #conversation script").count() == 0
        assert chat.dialogs == []

    assert_inert()
    chat.shot("xss")
    # The stored conversation is rendered safely too.
    chat.page.reload()
    expect(chat.turns.first.locator("[data-role=question]")).to_have_text(f"You asked: {payload}")
    assert_inert()


@pytest.mark.browser
def test_api_text_is_never_inserted_as_html(chat: Chat) -> None:
    """A source name, passage or answer holding markup shows as text, in the dialog too."""
    evil = '<img src=x onerror="window.__xss=1;alert(1)">'
    name = f"{evil}.txt"
    text = f"Intro {evil} says <b>bold</b> <script>window.__xss=2</script> end."
    answer = f"{evil} says <b>bold</b>"
    start = 100 + text.index(answer)
    body = {
        "question": "q",
        "answer": answer,
        "answer_source": {
            "source": name,
            "paragraph": 1,
            "start": start,
            "end": start + len(answer),
        },
        "confidence": 0.9,
        "citations": [
            {
                "source": name,
                "paragraph": 1,
                "start": 100,
                "end": 100 + len(text),
                "text": text,
                "score": 0.5,
                "also_in": [{"source": evil, "paragraph": 2}],
            }
        ],
    }
    source = {
        "source": name,
        "sha256": "0" * 64,
        "paragraphs": [
            {"paragraph": 0, "start": 0, "end": 20, "kind": "heading", "text": f"<h1>{evil}</h1>"},
            {"paragraph": 1, "start": 100, "end": 100 + len(text), "kind": "body", "text": text},
        ],
    }
    chat.page.route("**/ask", lambda route: route.fulfill(json=body))
    chat.page.route("**/sources/**", lambda route: route.fulfill(json=source))
    turn = chat.ask("what does the evil source say?")
    reply = turn.locator(".reply")
    expect(reply.locator("[data-role=answer]")).to_have_text(answer)
    expect(reply.locator(".chip-primary .chip-label")).to_have_text(chip_label(name, 1))
    reply.locator(".chip-primary").click()
    dialog = chat.page.get_by_role("dialog")
    expect(dialog.locator("mark")).to_have_text(answer)
    expect(dialog.locator("#source-title")).to_have_text(name)
    expect(dialog.locator('.para[data-paragraph="0"] .para-text')).to_have_text(f"<h1>{evil}</h1>")
    chat.shot("api-xss")
    assert chat.page.evaluate("typeof window.__xss") == "undefined"
    assert chat.page.locator("main img, dialog img, main b, dialog b, dialog h1").count() == 0


@pytest.mark.browser
def test_searching_state_disables_send_until_the_answer(chat: Chat) -> None:
    held: list[Route] = []
    chat.page.route("**/ask", lambda route: held.append(route))
    turn = chat.ask(SEED_QUESTION, wait=False)
    reply = turn.locator(".reply")
    expect(reply).to_have_attribute("data-state", "searching")
    expect(reply).to_contain_text("Searching the articles…")
    expect(chat.send_button).to_be_disabled()
    expect(chat.input).to_be_focused()
    # Enter while a question is pending does not send a second one.
    chat.input.fill(OTHER_SEED_QUESTION)
    chat.input.press("Enter")
    expect(chat.turns).to_have_count(1)
    expect(chat.input).to_have_value(OTHER_SEED_QUESTION)
    chat.shot("searching")
    chat.page.wait_for_timeout(100)
    assert len(held) == 1
    held[0].continue_()
    expect(reply).to_have_attribute("data-state", "answer")
    expect(chat.send_button).to_be_enabled()
    chat.page.unroute("**/ask")
    chat.input.press("Enter")
    expect(chat.turns).to_have_count(2)
    expect(chat.turns.nth(1).locator(".reply")).to_have_attribute("data-state", "answer")


@pytest.mark.browser
def test_enter_sends_and_shift_enter_adds_a_line(chat: Chat) -> None:
    chat.input.click()
    chat.page.keyboard.type("Who is")
    chat.page.keyboard.press("Shift+Enter")
    chat.page.keyboard.type("Nikita Smagin?")
    expect(chat.input).to_have_value("Who is\nNikita Smagin?")
    expect(chat.turns).to_have_count(0)
    chat.page.keyboard.press("Enter")
    expect(chat.turns).to_have_count(1)
    expect(chat.input).to_have_value("")
    expect(chat.input).to_be_focused()
    expect(chat.turns.first.locator(".reply")).to_have_attribute("data-state", "answer")
    # An empty question is not sent.
    chat.page.keyboard.press("Enter")
    expect(chat.turns).to_have_count(1)
    # Example questions send themselves.
    chat.page.get_by_role("button", name="New conversation").click()
    chat.page.get_by_role("button", name=OTHER_SEED_QUESTION).click()
    expect(chat.turns).to_have_count(1)
    expect(chat.turns.first.locator(".reply")).to_have_attribute("data-state", "answer")
    expect(chat.input).to_be_focused()
    chat.shot("keyboard")


@pytest.mark.browser
def test_server_down_shows_error_and_keeps_the_question(
    make_chat, seed_index_dir: Path, tmp_path: Path
) -> None:
    with serve(seed_index_dir, tmp_path) as server:
        chat = make_chat(server.url).open()
        chat.ask(SEED_QUESTION)
        server.stop()
        turn = chat.ask(OTHER_SEED_QUESTION)
    reply = turn.locator(".reply")
    expect(reply).to_have_attribute("data-state", "error")
    expect(reply).to_contain_text("Can't reach the server")
    expect(turn.locator("[data-role=question]")).to_contain_text(OTHER_SEED_QUESTION)
    retry = reply.get_by_role("button", name="Retry")
    expect(retry).to_be_enabled()
    expect(chat.send_button).to_be_enabled()
    expect(chat.input).to_be_focused()
    # The earlier answer is still there.
    expect(chat.turns.first.locator(".reply")).to_have_attribute("data-state", "answer")
    chat.shot("server-down")
    # Retrying while the server is still down fails the same way, question still kept.
    retry.click()
    expect(reply).to_have_attribute("data-state", "error")
    expect(chat.turns).to_have_count(2)
    # "Edit question" puts the question back in the box.
    reply.get_by_role("button", name="Edit question").click()
    expect(chat.input).to_have_value(OTHER_SEED_QUESTION)
    expect(chat.input).to_be_focused()


@pytest.mark.browser
def test_retry_after_a_failed_request_answers_in_place(chat: Chat) -> None:
    chat.page.route("**/ask", lambda route: route.abort("connectionrefused"))
    turn = chat.ask(SEED_QUESTION)
    reply = turn.locator(".reply")
    expect(reply).to_have_attribute("data-state", "error")
    chat.page.unroute("**/ask")
    reply.get_by_role("button", name="Retry").click()
    expect(reply).to_have_attribute("data-state", "answer")
    expect(chat.turns).to_have_count(1)
    expect(reply.locator("[data-role=answer]")).not_to_be_empty()
    chat.shot("retried")


@pytest.mark.browser
def test_http_error_message_is_shown(chat: Chat, live_server: Server) -> None:
    too_long = "Why? " * 401  # 2005 characters, over the server's 2000 limit
    response = httpx.post(f"{live_server.url}/ask", json={"question": too_long.strip()})
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    turn = chat.ask(too_long)
    reply = turn.locator(".reply")
    expect(reply).to_have_attribute("data-state", "error")
    expect(reply.locator("[data-role=error-message]")).to_have_text(message)
    expect(reply).to_contain_text("422")
    expect(reply.get_by_role("button", name="Retry")).to_be_visible()
    expect(turn.locator("[data-role=question]")).to_contain_text(too_long.strip())
    chat.shot("http-error")


@pytest.mark.browser
def test_time_out_shows_error_with_retry(make_chat, live_server: Server) -> None:
    chat = make_chat(live_server.url)
    # The page reads its time-out (20 s by default) from this hook, so the test is quick.
    chat.page.add_init_script("window.SEEDSQA_TIMEOUT_MS = 1500")
    chat.open()
    held: list[Route] = []
    chat.page.route("**/ask", lambda route: held.append(route))
    turn = chat.ask(SEED_QUESTION, wait=False)
    reply = turn.locator(".reply")
    expect(reply).to_have_attribute("data-state", "searching")
    expect(reply).to_have_attribute("data-state", "error", timeout=10_000)
    expect(reply).to_contain_text("took too long")
    chat.page.unroute("**/ask")
    reply.get_by_role("button", name="Retry").click()
    expect(reply).to_have_attribute("data-state", "answer")
    chat.shot("time-out")


@pytest.mark.browser
def test_history_survives_reload_and_new_conversation_clears_it(chat: Chat) -> None:
    chat.ask(SEED_QUESTION)
    chat.ask(OUT_OF_CORPUS)
    answers = chat.page.locator("[data-role=answer]").all_inner_texts()
    chat.page.reload()
    expect(chat.turns).to_have_count(2)
    expect(chat.turns.nth(0).locator("[data-role=question]")).to_contain_text(SEED_QUESTION)
    expect(chat.turns.nth(1).locator("[data-role=no-answer]")).to_have_text(NO_ANSWER_TEXT)
    assert chat.page.locator("[data-role=answer]").all_inner_texts() == answers
    expect(chat.page.locator("#intro")).to_be_hidden()
    # Newest at the bottom, scrolled into view.
    expect(chat.turns.nth(1).locator(".reply")).to_be_in_viewport()
    chat.shot("reloaded")
    # The chips of a restored answer still open the source.
    chat.turns.first.locator(".chip-primary").click()
    expect(chat.page.get_by_role("dialog").locator("mark")).to_have_text(answers[0])
    chat.page.keyboard.press("Escape")

    chat.page.get_by_role("button", name="New conversation").click()
    expect(chat.turns).to_have_count(0)
    expect(chat.page.locator("#intro")).to_be_visible()
    expect(chat.input).to_be_focused()
    chat.page.reload()
    expect(chat.turns).to_have_count(0)
    chat.shot("cleared")


@pytest.mark.browser
def test_copy_button_copies_the_quote_with_its_source(make_chat, live_server: Server) -> None:
    chat = make_chat(live_server.url)
    chat.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    chat.open()
    expected = api_ask(live_server, SEED_QUESTION)
    turn = chat.ask(SEED_QUESTION)
    copy = turn.get_by_role("button", name="Copy the answer with its source")
    copy.click()
    expect(copy).to_contain_text("Copied")
    copied = chat.page.evaluate("navigator.clipboard.readText()")
    source = expected["answer_source"]
    label = chip_label(source["source"], source["paragraph"])
    assert copied == f"“{expected['answer']}”\n— {label}"
    chat.shot("copied")


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("size", "viewport"), [("phone", PHONE), ("desktop", DESKTOP)])
def test_layout_fits_phone_and_desktop(
    make_chat, live_server: Server, scheme: str, size: str, viewport: dict
) -> None:
    chat = make_chat(live_server.url, viewport=viewport, color_scheme=scheme)
    chat.open()
    chat.shot(f"{size}-{scheme}-empty")
    chat.ask(SEED_QUESTION)
    chat.ask(OUT_OF_CORPUS)
    page = chat.page

    def no_horizontal_overflow() -> None:
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"page is {width}px wide, screen {viewport['width']}px"

    no_horizontal_overflow()
    # The question box sits at the bottom of the screen, fully visible.
    box = page.locator(".composer-box").bounding_box()
    assert box is not None
    assert box["y"] + box["height"] <= viewport["height"]
    assert box["y"] > viewport["height"] * 0.75
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
    # Light and dark follow the system setting.
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    channels = [int(c) for c in re.findall(r"\d+", background)[:3]]
    assert (sum(channels) / 3 > 128) == (scheme == "light"), background
    chat.shot(f"{size}-{scheme}-conversation")

    page.evaluate("document.getElementById('scroller').scrollTop = 0")
    chip = chat.turns.first.locator(".chip-primary")
    chip_box = chip.bounding_box()
    assert chip_box is not None and chip_box["x"] + chip_box["width"] <= viewport["width"]
    chat.shot(f"{size}-{scheme}-answer")
    chip.click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator("mark")).to_be_in_viewport()
    dialog_box = dialog.bounding_box()
    assert dialog_box is not None
    assert dialog_box["x"] >= 0 and dialog_box["x"] + dialog_box["width"] <= viewport["width"]
    no_horizontal_overflow()
    chat.shot(f"{size}-{scheme}-source")


@pytest.mark.browser
def test_api_key_is_asked_for_then_sent(make_chat, seed_index_dir: Path, tmp_path: Path) -> None:
    key = "chat-page-test-key"
    with serve(seed_index_dir, tmp_path, env={"RAG_API_KEY": key}) as server:
        chat = make_chat(server.url).open()
        turn = chat.ask(SEED_QUESTION)
        reply = turn.locator(".reply")
        expect(reply).to_have_attribute("data-state", "error")
        expect(reply).to_contain_text("This server needs an API key")
        expect(reply).to_contain_text("401")
        key_dialog = chat.page.get_by_role("dialog", name="API key")
        expect(key_dialog).to_be_visible()
        chat.shot("api-key")
        key_dialog.get_by_label("Key", exact=True).fill(key)
        key_dialog.get_by_role("button", name="Save").click()
        expect(key_dialog).to_be_hidden()
        assert chat.page.evaluate("localStorage.getItem('seedsqa.apiKey')") == key
        reply.get_by_role("button", name="Retry").click()
        expect(reply).to_have_attribute("data-state", "answer")
        # The key is sent for the source too.
        reply.locator(".chip-primary").click()
        expect(chat.page.locator("#source-dialog mark")).to_have_text(
            reply.locator("[data-role=answer]").inner_text()
        )
