"""A real browser: an owner invites a newcomer, the invitation email's link leads them through
sign-up to accepting it, and as a member they see manage buttons only on their own keys.

The web server runs with EMAIL_URL pointing at a small SMTP sink in this test, so the link is
the one a real inbox would receive."""

from __future__ import annotations

import email
import os
import re
import shutil
import socketserver
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import sync_playwright

from tests.servers import ROOT, free_port, process_stop, wait_http

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "Browser-pass-1234"


class _SmtpSink(socketserver.StreamRequestHandler):
    """Just enough SMTP for Django's backend: every message lands in `server.messages`."""

    def _reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self._reply("220 sink")
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"DATA":
                self._reply("354 go on")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b"..") else chunk
                self.server.messages.append(email.message_from_bytes(data))  # type: ignore[attr-defined]
                self._reply("250 stored")
            elif verb == b"QUIT":
                self._reply("221 bye")
                return
            else:
                self._reply("250 ok")


@pytest.fixture(scope="module")
def smtp_sink() -> Iterator[tuple[int, list[email.message.Message]]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SmtpSink)
    server.daemon_threads = True
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], server.messages  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def web_url(django_db_setup, smtp_sink) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The real ASGI server, sending its email over SMTP to the sink."""
    from django.conf import settings

    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=settings.DATABASE_URL,
        REDIS_URL=settings.REDIS_URL,
        EMAIL_URL=f"smtp://127.0.0.1:{smtp_sink[0]}",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "aiproxy_site.asgi:application"],
        cwd=ROOT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/accounts/login/", proc)
    yield url
    process_stop(proc)


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not shutil.which("chromium") and not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: run `apt-get install chromium`")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield b
        b.close()


def _body(message: email.message.Message) -> str:
    part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode()  # type: ignore[union-attr]


def test_invite_email_link_signup_accept_and_member_sees_only_own_key_buttons(  # type: ignore[no-untyped-def]
    browser, web_url, smtp_sink, make_user, make_workspace
):
    from django.db import connection

    from keys.services import api_key_create

    def seed() -> str:  # Playwright's loop runs in this thread: the ORM goes in another
        owner = make_user(password=PASSWORD)
        workspace = make_workspace(name="Invite Co", owner=owner)
        api_key_create(workspace=workspace, name="owners-production-key", created_by_id=owner.pk)
        connection.close()
        return str(owner.email)

    with ThreadPoolExecutor(1) as pool:
        owner_email = pool.submit(seed).result()
    invitee = f"invitee-{uuid.uuid4().hex[:8]}@example.com"

    owner_page = browser.new_context().new_page()
    owner_page.goto(web_url + "/accounts/login/")
    owner_page.fill("input[name=login]", owner_email)
    owner_page.fill("input[name=password]", PASSWORD)
    owner_page.click("form button[type=submit]")
    owner_page.wait_for_selector("[data-testid=current-workspace]")
    owner_page.goto(web_url + "/workspaces/members/")
    form = owner_page.get_by_test_id("invite-form")
    form.locator("input[name=email]").fill(invitee)
    form.locator("select[name=role]").select_option("member")
    form.locator("button[type=submit]").click()
    owner_page.wait_for_selector(f"text=Invitation sent to {invitee}")
    assert owner_page.locator(f'tr[data-invitation="{invitee}"]').count() == 1

    messages = smtp_sink[1]
    message = next(m for m in reversed(messages) if invitee in m["To"])
    link = re.search(r"http://\S+/workspaces/invite/\S+/", _body(message)).group(0)
    assert link.startswith(web_url)

    page = browser.new_context().new_page()
    page.goto(link)
    assert "Invite Co" in page.get_by_test_id("invitation").inner_text()
    page.get_by_test_id("invitation-signup").click()
    page.fill("input[name=email]", invitee)
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    page.fill("input[name=workspace_name]", "Invitee's own")
    page.click("form button[type=submit]")
    page.wait_for_url(link)
    assert "not confirmed yet" in page.get_by_test_id("invitation-unverified").inner_text()
    confirmation = next(m for m in reversed(messages) if invitee in m["To"] and "/accounts/confirm-email/" in _body(m))
    page.goto(re.search(r"http://\S+/accounts/confirm-email/\S+/", _body(confirmation)).group(0))
    page.click("form[action*='/accounts/confirm-email/'] button[type=submit]")
    page.wait_for_load_state()
    page.goto(link)
    page.click("text=Accept invitation")
    page.wait_for_selector("text=Welcome to Invite Co")
    assert page.get_by_test_id("current-workspace").inner_text() == "Invite Co"

    page.goto(web_url + "/keys/")
    page.fill("input[name=name]", "members-own-key")
    page.click("text=Create key")
    page.wait_for_selector("[data-testid=new-secret]")
    rows = page.locator("table[data-testid=keys] tbody tr")
    owners_row = rows.filter(has_text="owners-production-key")
    own_row = rows.filter(has_text="members-own-key")
    assert owners_row.count() == 1 and own_row.count() == 1
    assert owners_row.locator("button", has_text="Revoke").count() == 0
    assert owners_row.locator("summary", has_text="rename").count() == 0
    assert own_row.locator("button", has_text="Revoke").count() == 1

    page.goto(link)
    assert "already accepted" in page.get_by_test_id("invitation-problem").inner_text()
