"""/docs (Swagger UI) and /redoc in a real headless Chromium with every request outside
the server blocked, as on a machine without internet: both render every operation of
the API from assets the app serves itself."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from tests.api.test_chat_page import CHROMIUM, CHROMIUM_ARGS
from tests.servers import Server

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def operations(url: str) -> list[tuple[str, str, str]]:
    """(METHOD, path, summary) of every operation in the server's OpenAPI document."""
    spec = httpx.get(f"{url}/openapi.json", timeout=10).json()
    return [
        (method.upper(), path, op["summary"])
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]


def offline_page(browser: Browser, server: Server) -> tuple[Page, list[str], list[str]]:
    """A page whose requests outside the server's origin are aborted (and recorded)."""
    page = browser.new_page()
    outside: list[str] = []
    errors: list[str] = []

    def only_the_server(route: Route) -> None:
        if route.request.url.startswith(f"{server.url}/"):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_the_server)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, outside, errors


def test_swagger_ui_lists_every_operation_offline(
    browser: Browser, live_server: Server, tmp_path
) -> None:
    ops = operations(live_server.url)
    assert ("POST", "/ask", "Ask") in ops and ("GET", "/ready", "Ready") in ops
    page, outside, errors = offline_page(browser, live_server)
    page.goto(f"{live_server.url}/docs")
    for method, path, _ in ops:
        block = page.locator(f".opblock-{method.lower()}").filter(
            has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
        )
        expect(block).to_have_count(1, timeout=15_000)
        expect(block.locator(".opblock-summary-method")).to_have_text(method)
    page.screenshot(path=tmp_path / "docs.png", full_page=True)
    assert outside == []
    assert errors == []
    page.close()


def test_redoc_lists_every_operation_offline(
    browser: Browser, live_server: Server, tmp_path
) -> None:
    ops = operations(live_server.url)
    page, outside, errors = offline_page(browser, live_server)
    page.goto(f"{live_server.url}/redoc")
    for method, path, summary in ops:
        # Each operation has a heading with its summary, and its method and path shown.
        expect(page.locator(f'h2:text-is("{summary}")')).to_have_count(1, timeout=15_000)
        expect(page.get_by_text(path, exact=True).first).to_be_attached()
        expect(page.get_by_text(method.lower(), exact=True).first).to_be_attached()
    page.screenshot(path=tmp_path / "redoc.png", full_page=True)
    assert outside == []
    assert errors == []
    page.close()


def test_assets_come_from_the_app(live_server: Server) -> None:
    for page in ("/docs", "/redoc"):
        csp = httpx.get(f"{live_server.url}{page}").headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "img-src 'self' data:" in csp
    html = httpx.get(f"{live_server.url}/docs").text
    assert "/docs-assets/swagger-ui-bundle.js" in html
    assert "/docs-assets/swagger-ui.css" in html
    assert "cdn" not in html.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js"):
        r = httpx.get(f"{live_server.url}/docs-assets/{asset}")
        assert r.status_code == 200 and len(r.content) > 100_000, asset
