"""A real browser (Debian's chromium via Playwright) walks sign-up -> key -> revoke."""

from __future__ import annotations

import shutil
import uuid

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not shutil.which("chromium"):
        pytest.fail("chromium is not installed: run `apt-get install chromium` (done by .ci/run)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                              "--disable-background-networking"])
        yield b
        b.close()


def test_signup_create_key_and_revoke_in_browser(browser, gateway_url, fake_models):  # type: ignore[no-untyped-def]
    import openai

    page = browser.new_page()
    email = f"browser-{uuid.uuid4().hex[:8]}@example.com"
    page.goto(gateway_url + "/accounts/signup/")
    page.fill("input[name=email]", email)
    page.fill("input[name=password1]", "Browser-pass-1234")
    page.fill("input[name=password2]", "Browser-pass-1234")
    page.fill("input[name=workspace_name]", "Browser Team")
    page.click("form button[type=submit]")
    page.wait_for_url(gateway_url + "/**")
    assert page.get_by_test_id("current-workspace").inner_text() == "Browser Team"

    page.goto(gateway_url + "/keys/")
    page.fill("input[name=name]", "from the browser")
    page.click("text=Create key")
    secret = page.get_by_test_id("new-secret").inner_text().strip()
    assert secret.startswith("sk-aip-")
    client = openai.OpenAI(base_url=gateway_url + "/v1", api_key=secret, max_retries=0)
    reply = client.chat.completions.create(model="fake-openai", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content

    page.reload()
    assert secret not in page.content()
    assert page.locator("table[data-testid=keys] tbody tr").count() == 1
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("text=Revoke")
    page.wait_for_selector("text=revoked")
    import time

    time.sleep(1.0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


def test_admin_clears_the_response_cache_from_the_settings_page(browser, gateway_url, make_user, make_workspace):  # type: ignore[no-untyped-def]
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from tests.cache.seed import exact_entries_store, semantic_entry_create

    def seed() -> str:  # Playwright's loop runs in this thread: the ORM and asyncio.run go in another
        owner = make_user(password="Browser-pass-1234")
        workspace = make_workspace(owner=owner)
        exact_entries_store(workspace, 2)
        semantic_entry_create(workspace)
        connection.close()
        return str(owner.email)

    with ThreadPoolExecutor(1) as pool:
        email = pool.submit(seed).result()
    page = browser.new_page()
    page.goto(gateway_url + "/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", "Browser-pass-1234")
    page.click("form button[type=submit]")
    page.wait_for_selector("[data-testid=current-workspace]")

    page.goto(gateway_url + "/workspaces/settings/")
    assert page.get_by_test_id("cache-exact").inner_text() == "2 entries"
    assert page.get_by_test_id("cache-semantic").inner_text() == "1 entry"
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("text=Clear cache")
    page.wait_for_selector("text=Cache cleared: 2 exact and 1 semantic entries removed.")
    assert page.get_by_test_id("cache-exact").inner_text() == "0 entries"
    assert page.get_by_test_id("cache-semantic").inner_text() == "0 entries"
