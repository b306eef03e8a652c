"""The first hour in a real browser (Debian's chromium via Playwright): account pages in the
product's layout, a phone-sized screen, copy buttons that put the right text on the clipboard,
a favicon, and honest labels in the usage table."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import anthropic
import openai
import pytest
from playwright.sync_api import Page, sync_playwright

from tests.e2e.sdk import anthropic_client, events_of, openai_client

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "Browser-pass-1234"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser(gateway_url, fake_models):  # type: ignore[no-untyped-def]
    """Started after the servers and the catalog, whose setup uses the ORM outside Playwright's loop."""
    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed: run `apt-get install chromium` (done by .ci/run)")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield b
        b.close()


def off_loop(fn: Callable[[], Any]) -> Any:
    """Playwright's event loop runs in this thread, so the ORM and the SDKs run in another."""
    from django.db import connection

    def run() -> Any:
        try:
            return fn()
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(run).result()


@pytest.fixture
def owner(make_user, make_workspace):  # type: ignore[no-untyped-def]
    """A signed-up owner with a workspace, one API key and a request that succeeded and one that failed."""
    from keys.services import api_key_create

    def seed() -> dict[str, Any]:
        user = make_user(password=PASSWORD)
        workspace = make_workspace(owner=user, name=f"Phone Team {uuid.uuid4().hex[:6]}")
        key, secret = api_key_create(workspace=workspace, name="a key with a rather long name for a phone screen")
        return {"email": user.email, "user": user, "workspace": workspace, "key_id": key.pk, "secret": secret}

    return off_loop(seed)


def sign_in(page: Page, gateway_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(gateway_url + "/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_selector("[data-testid=current-workspace]")


def assert_product_layout(page: Page) -> None:
    assert page.locator("header.top a.brand").inner_text() == "AIProxy", page.url
    assert page.locator("link[rel=stylesheet][href*='css/app.css']").count() == 1, page.url
    assert page.title().endswith("AIProxy"), (page.url, page.title())


def fits(page: Page) -> int:
    return int(page.evaluate("document.scrollingElement.scrollWidth"))


def test_account_pages_use_the_product_layout_and_are_linked_from_the_user_menu(  # type: ignore[no-untyped-def]
    browser, gateway_url, owner
):
    page = browser.new_page()
    sign_in(page, gateway_url, owner["email"])

    page.get_by_test_id("user-menu").click()
    page.get_by_role("link", name="Email addresses").click()
    page.wait_for_url(gateway_url + "/accounts/email/")
    assert_product_layout(page)
    assert page.get_by_test_id("current-workspace").is_visible()
    assert owner["email"] in page.locator("main").inner_text()

    page.get_by_test_id("user-menu").click()
    page.get_by_role("link", name="Change password").click()
    page.wait_for_url(gateway_url + "/accounts/password/change/")
    assert_product_layout(page)
    page.fill("input[name=oldpassword]", PASSWORD)
    page.fill("input[name=password1]", "Changed-pass-5678")
    page.fill("input[name=password2]", "Changed-pass-5678")
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("text=Password successfully changed.")
    assert_product_layout(page)

    page.goto(gateway_url + "/accounts/logout/")  # the confirmation page a GET lands on
    assert_product_layout(page)
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(gateway_url + "/")
    assert page.get_by_test_id("current-workspace").count() == 0

    for path in ["/accounts/inactive/", "/accounts/confirm-email/"]:  # allauth's templates on its own layouts
        page.goto(gateway_url + path)
        assert_product_layout(page)
        assert page.locator("main h1").count() == 1, path

    page.goto(gateway_url + "/accounts/password/reset/")
    assert_product_layout(page)
    page.fill("input[name=email]", owner["email"])
    page.locator("main form button[type=submit]").click()
    page.wait_for_url(gateway_url + "/accounts/password/reset/done/")
    assert_product_layout(page)

    def reset_url() -> str:
        from allauth.account.forms import default_token_generator
        from allauth.account.utils import user_pk_to_url_str

        user = owner["user"]
        user.refresh_from_db()
        return f"/accounts/password/reset/key/{user_pk_to_url_str(user)}-{default_token_generator.make_token(user)}/"

    page.goto(gateway_url + off_loop(reset_url))
    page.wait_for_selector("input[name=password1]")  # allauth moves the token into the session, then redirects
    assert_product_layout(page)
    page.fill("input[name=password1]", "Reset-pass-9012")
    page.fill("input[name=password2]", "Reset-pass-9012")
    page.get_by_role("button", name="Change Password").click()
    page.wait_for_url(re.compile(r".*/accounts/password/reset/key/done/$"))
    assert_product_layout(page)
    sign_in(page, gateway_url, owner["email"], "Reset-pass-9012")
    page.close()


def test_every_page_fits_a_390px_wide_screen(browser, gateway_url, owner, fake_models):  # type: ignore[no-untyped-def]
    def traffic() -> None:
        client = openai_client(gateway_url, owner["secret"])
        client.chat.completions.create(model="fake-openai", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.APIStatusError):
            client.chat.completions.create(model="dead-model", messages=[{"role": "user", "content": "hi"}])
        assert len(events_of(owner["workspace"])) >= 2

    off_loop(traffic)
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    for path in ["/", "/accounts/login/", "/accounts/signup/", "/accounts/password/reset/"]:
        page.goto(gateway_url + path)
        assert fits(page) <= PHONE["width"], (path, fits(page))

    sign_in(page, gateway_url, owner["email"])
    for menu in ["current-workspace", "user-menu"]:  # an open menu stays on the screen
        page.get_by_test_id(menu).click()
        box = page.locator("details.menu[open] ul").bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (menu, box)
        assert fits(page) <= PHONE["width"], menu
        page.get_by_test_id(menu).click()
    paths = {
        "/",
        f"/keys/{owner['key_id']}/",
        "/workspaces/new/",
        "/accounts/email/",
        "/accounts/password/change/",
        "/accounts/logout/",
    }
    # every page the header and the user menu lead to
    for href in page.locator("header a[href^='/']").evaluate_all("links => links.map(a => a.getAttribute('href'))"):
        if not href.startswith(("/api/docs", "/admin")):
            paths.add(href)
    assert {"/keys/", "/usage/", "/workspaces/members/", "/workspaces/settings/"} <= paths
    for path in sorted(paths):
        page.goto(gateway_url + path)
        assert page.locator("main").count() == 1
        assert fits(page) <= PHONE["width"], (path, fits(page))

    page.goto(gateway_url + "/keys/")  # the page right after a key is created, with the secret shown once
    page.fill("input[name=name]", "phone key")
    page.click("text=Create key")
    page.get_by_test_id("new-secret").wait_for()
    assert fits(page) <= PHONE["width"]
    page.goto(gateway_url + "/workspaces/admin-tokens/")
    page.fill("input[name=name]", "phone token")
    page.click("text=Create token")
    page.get_by_test_id("new-secret").wait_for()
    assert fits(page) <= PHONE["width"]

    def long_texts() -> dict[str, Any]:
        from allauth.account.models import EmailAddress
        from django.core import mail

        from keys.services import api_key_create
        from tenants.models import Membership
        from tenants.services import invitation_create

        user, workspace = owner["user"], owner["workspace"]
        EmailAddress.objects.create(user=user, email="a-rather-long-unbroken-address-" + "x" * 60 + "@example.com")
        key, _ = api_key_create(workspace=workspace, name="k" * 100)
        actor = Membership.objects.get(workspace=workspace, user=user)
        invited = "firstname.lastname.0123456789@example.com"  # an ordinary 41-character address
        invitation_create(actor=actor, email=invited, role="member", base_url=gateway_url)
        link = re.search(r"https?://\S+/workspaces/invite/\S+/", mail.outbox[-1].body).group(0)  # type: ignore[union-attr]
        return {"invite": urlsplit(link).path, "key_id": key.pk, "invited": invited}

    long = off_loop(long_texts)
    assert len(long["invited"]) == 41
    signed_out = browser.new_context(viewport=PHONE).new_page()
    signed_out.goto(gateway_url + long["invite"])
    assert long["invited"] in signed_out.get_by_test_id("invitation").inner_text()
    assert fits(signed_out) <= PHONE["width"], fits(signed_out)
    signed_out.context.close()
    for path in [long["invite"], "/accounts/email/", f"/keys/{long['key_id']}/", "/keys/", "/"]:
        page.goto(gateway_url + path)
        assert fits(page) <= PHONE["width"], (path, fits(page))

    page.goto(gateway_url + "/")  # the dashboard's recent requests scroll inside their own box, as on /usage/
    assert page.get_by_test_id("events-scroll").evaluate(
        "box => getComputedStyle(box).overflowX === 'auto' && box.scrollWidth > box.clientWidth"
    )

    page.goto(gateway_url + "/usage/")  # a wide table scrolls inside its own box, not the page
    table = page.locator("main table").last
    assert table.evaluate(
        "t => t.scrollWidth > t.clientWidth && getComputedStyle(t).overflowX === 'auto'"
    ) or table.evaluate("t => getComputedStyle(t.parentElement).overflowX === 'auto'")
    page.screenshot(path=str(_screenshots() / "usage-390.png"), full_page=True)
    page.goto(gateway_url + "/")
    page.screenshot(path=str(_screenshots() / "dashboard-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.screenshot(path=str(_screenshots() / "dashboard-1280.png"), full_page=True)
    context.close()


def _screenshots():  # type: ignore[no-untyped-def]
    from tests.servers import ROOT

    path = ROOT / ".aiproxy" / "test" / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


def clipboard(page: Page) -> str:
    return str(page.evaluate("navigator.clipboard.readText()"))


def test_copy_buttons_put_secrets_and_working_snippets_on_the_clipboard(  # type: ignore[no-untyped-def]
    browser, gateway_url, owner, fake_models
):
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway_url)
    page = context.new_page()
    sign_in(page, gateway_url, owner["email"])

    page.goto(gateway_url + "/keys/")
    page.fill("input[name=name]", "copied key")
    page.click("text=Create key")
    secret = page.get_by_test_id("new-secret").inner_text().strip()
    page.get_by_test_id("copy-new-secret").click()
    assert clipboard(page) == secret
    assert page.get_by_test_id("copy-new-secret").inner_text() == "Copied"

    page.goto(gateway_url + "/workspaces/admin-tokens/")
    page.fill("input[name=name]", "copied token")
    page.click("text=Create token")
    token = page.get_by_test_id("new-secret").inner_text().strip()
    page.get_by_test_id("copy-new-secret").click()
    assert token and clipboard(page) == token

    page.goto(gateway_url + "/")
    page.get_by_test_id("copy-snippet-openai").click()
    openai_snippet = clipboard(page)
    page.get_by_test_id("copy-snippet-anthropic").click()
    anthropic_snippet = clipboard(page)
    assert openai_snippet == page.get_by_test_id("snippet-openai").inner_text().strip()
    assert anthropic_snippet == page.get_by_test_id("snippet-anthropic").inner_text().strip()
    openai_base = re.search(r"OPENAI_BASE_URL=(\S+)", openai_snippet).group(1)  # type: ignore[union-attr]
    anthropic_base = re.search(r"ANTHROPIC_BASE_URL=(\S+)", anthropic_snippet).group(1)  # type: ignore[union-attr]
    assert "OPENAI_API_KEY=" in openai_snippet and "ANTHROPIC_API_KEY=" in anthropic_snippet
    assert urlsplit(openai_base).netloc == urlsplit(gateway_url).netloc

    def call_both() -> tuple[str, str]:  # the SDKs as a user configures them from the snippets
        o = openai.OpenAI(base_url=openai_base, api_key=secret, max_retries=0, timeout=20)
        a = anthropic.Anthropic(base_url=anthropic_base, api_key=secret, max_retries=0, timeout=20)
        chat = o.chat.completions.create(model="fake-openai", messages=[{"role": "user", "content": "hi"}])
        message = a.messages.create(model="fake-anthropic", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        return str(chat.choices[0].message.content), str(message.content[0].text)  # type: ignore[union-attr]

    assert all(off_loop(call_both))
    context.close()


def test_favicon_is_linked_and_served(browser, gateway_url):  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(gateway_url + "/")
    hrefs = page.locator("link[rel~=icon]").evaluate_all("links => links.map(l => l.href)")
    assert hrefs
    for url in [*hrefs, gateway_url + "/favicon.ico"]:
        response = page.request.get(url)
        assert response.status == 200, url
        assert response.headers["content-type"].startswith("image/"), (url, response.headers["content-type"])
    page.close()


def test_error_rows_are_not_labelled_as_cache_misses(browser, gateway_url, owner, fake_models):  # type: ignore[no-untyped-def]
    def traffic() -> None:
        client = openai_client(gateway_url, owner["secret"])
        client.chat.completions.create(model="fake-openai", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.APIStatusError):  # the upstream cannot be reached: 502
            client.chat.completions.create(model="dead-model", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(anthropic.BadRequestError):  # over the context window: 400
            anthropic_client(gateway_url, owner["secret"]).messages.create(
                model="tiny-window", max_tokens=16, messages=[{"role": "user", "content": "hi " * 3000}]
            )
        statuses = sorted(e.status_code for e in events_of(owner["workspace"]))
        assert statuses[0] == 200 and statuses[-1] >= 400, statuses

    off_loop(traffic)
    page = browser.new_page()
    sign_in(page, gateway_url, owner["email"])
    for path in ["/usage/", "/"]:
        page.goto(gateway_url + path)
        header = page.locator("main table").last.locator("thead th").all_inner_texts()
        status_at, cache_at = header.index("Status"), header.index("Cache")
        cells = (
            page.locator("main table")
            .last.locator("tbody tr")
            .evaluate_all("rows => rows.map(r => Array.from(r.cells, c => c.innerText.trim()))")
        )
        labels = {(row[status_at].split()[0], row[cache_at]) for row in cells}
        assert ("200", "miss") in labels, labels
        errors = {label for status, label in labels if status != "200"}
        assert len([s for s, _ in labels if s != "200"]) >= 1 and errors == {"—"}, labels
    page.close()
