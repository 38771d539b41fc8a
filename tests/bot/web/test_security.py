"""Imagine Web as an attacker sees it: no session, used and expired links, other members' jobs,
forged CSRF tokens, path traversal in every route, oversized forms. Plain HTTP against the real
`imagine web` process (no browser needed)."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.parse
from datetime import timedelta
from http.cookies import SimpleCookie

import pytest

from bot.core.web_access import WebMember, issue_link, safe_target, token_hash
from storage.models import utcnow
from storage.store import Store
from tests.bot.web.conftest import WebProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]  # a real `imagine web` process

ALICE, MALLORY, GUILD = 501, 502, 9


class Client:
    """A browser-less member: the session cookie and the page's CSRF token."""

    def __init__(self, server: WebProcess, link: str) -> None:
        self.server = server
        status, headers, _ = server.request("POST", urllib.parse.urlsplit(link).path)
        assert status == 303, status
        cookie = SimpleCookie(headers["Set-Cookie"])
        self.cookie = f"imagine_session={cookie['imagine_session'].value}"
        self.set_cookie = headers["Set-Cookie"]
        _, _, body = self.get("/")
        self.csrf = re.search(rb'name="csrf" value="([0-9a-f]+)"', body).group(1).decode()

    def get(self, path: str) -> tuple[int, dict[str, str], bytes]:
        return self.server.request("GET", path, headers={"Cookie": self.cookie})

    def post(
        self, path: str, fields: dict[str, str], *, csrf: str | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        body = urllib.parse.urlencode({"csrf": self.csrf if csrf is None else csrf, **fields}).encode()
        headers = {"Cookie": self.cookie, "Content-Type": "application/x-www-form-urlencoded"}
        return self.server.request("POST", path, body=body, headers=headers)


@pytest.fixture(scope="module")
def alice(web_server: WebProcess) -> Client:
    return Client(web_server, web_server.link(ALICE, GUILD, name="alice"))


@pytest.fixture(scope="module")
def mallory(web_server: WebProcess) -> Client:
    return Client(web_server, web_server.link(MALLORY, GUILD, name="mallory"))


@pytest.fixture(scope="module")
def alice_job(alice: Client) -> str:
    status, headers, _ = alice.post("/imagine", {"prompt": "a secret green square --seed 3"})
    assert status == 303
    job_id = headers["Location"].rsplit("/", 1)[1]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        summary = json.loads(alice.get(f"/jobs/{job_id}/progress")[2])
        if summary["status"] == "done":
            return job_id
        time.sleep(0.3)
    raise TimeoutError("the job did not finish")


def test_health_answers_without_a_session(web_server: WebProcess) -> None:
    status, _, body = web_server.request("GET", "/healthz")
    assert (status, body) == (200, b"ok\n")


def test_without_a_session_every_page_redirects_to_sign_in_and_shows_nothing(
    web_server: WebProcess, alice_job: str
) -> None:
    for path in (
        "/",
        f"/jobs/{alice_job}",
        f"/jobs/{alice_job}/progress",
        f"/images/{alice_job}/1.png",
        f"/thumbs/{alice_job}.jpg",
        "/mod",
        f"/region/{alice_job}",
        "/?q=secret",
    ):
        status, headers, body = web_server.request("GET", path)
        assert status == 303 and headers["Location"] == "/signin", path
        assert alice_job.encode() not in body and b"secret" not in body and b"alice" not in body
    status, _, _ = web_server.request(
        "POST", "/imagine", body=b"prompt=x", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 403


def test_the_session_cookie_is_httponly_and_lax(alice: Client) -> None:
    assert "HttpOnly" in alice.set_cookie and "SameSite=Lax" in alice.set_cookie
    assert "Secure" not in alice.set_cookie  # plain http on loopback; https URLs get Secure (below)


def test_a_link_works_once(web_server: WebProcess) -> None:
    link = web_server.link(ALICE, GUILD)
    Client(web_server, link)
    status, headers, body = web_server.request("POST", urllib.parse.urlsplit(link).path)
    assert status == 403 and "Set-Cookie" not in headers
    assert b"already used or it expired" in body


def test_an_expired_link_and_an_expired_session_are_refused(web_server: WebProcess) -> None:
    async def make() -> str:
        store = await Store.open(None, web_server.data_dir)
        try:
            old = utcnow() - timedelta(minutes=16)
            link = await issue_link(store, web_server.url, WebMember(ALICE, "alice", GUILD), now=old)
            await store.add_web_token(
                token_hash("x" * 43),
                "session",
                user_id=ALICE,
                user_name="alice",
                guild_id=GUILD,
                moderator=False,
                expires_at=utcnow() - timedelta(seconds=1),
            )
            return link
        finally:
            await store.close()

    link = asyncio.run(make())
    status, headers, _ = web_server.request("POST", urllib.parse.urlsplit(link).path)
    assert status == 403 and "Set-Cookie" not in headers
    status, headers, _ = web_server.request("GET", "/", headers={"Cookie": "imagine_session=" + "x" * 43})
    assert status == 303 and headers["Location"] == "/signin"


def test_signing_out_ends_the_session(web_server: WebProcess) -> None:
    member = Client(web_server, web_server.link(ALICE, GUILD))
    assert member.post("/signout", {})[0] == 303
    status, headers, _ = member.get("/")
    assert status == 303 and headers["Location"] == "/signin"


def test_another_members_job_is_not_found_in_any_form(mallory: Client, alice_job: str) -> None:
    for path in (
        f"/jobs/{alice_job}",
        f"/jobs/{alice_job}/progress",
        f"/images/{alice_job}/1.png",
        f"/images/{alice_job}/grid.png",
        f"/thumbs/{alice_job}.jpg",
        f"/region/{alice_job}",
    ):
        status, _, body = mallory.get(path)
        assert status == 404 and b"secret" not in body, path
    status, _, _ = mallory.post(f"/jobs/{alice_job}/action", {"do": "V1"})
    assert status == 404
    assert alice_job.encode() not in mallory.get("/?q=secret")[2]


def test_a_forged_or_missing_csrf_token_is_refused_and_changes_nothing(
    alice: Client, mallory: Client, alice_job: str
) -> None:
    before = alice.get("/")[2].count(b'class="tile"')
    for token in ("0" * 64, mallory.csrf, ""):
        status, _, body = alice.post(f"/jobs/{alice_job}/action", {"do": "V1"}, csrf=token)
        assert status == 403 and b"did not come from this site" in body
        assert alice.post("/imagine", {"prompt": "more"}, csrf=token)[0] == 403
    assert alice.get("/")[2].count(b'class="tile"') == before


TRAVERSALS = [
    "/static/../web.log",
    "/static/%2e%2e/web.log",
    "/static/..%2fweb.log",
    "/static/%2E%2E%2Fapp.py",
    "/images/../../web.log",
    "/images/%2e%2e/%2e%2e/web.log",
    "/images/{job}/..%2f..%2fweb.log",
    "/images/{job}/%2e%2e%2fgrid.png",
    "/thumbs/..%2f{job}.jpg",
    "/thumbs/%2e%2e%2f%2e%2e%2fweb.log",
    "/jobs/..%2f..%2fweb.log",
    "/jobs/{job}/..%2f..%2fmod",
    "/region/%2e%2e%2f{job}",
    "/signin/..%2f..%2fweb.log",
    "/mod/..%5c..%5cweb.log",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/static/%252e%252e/web.log",
]


@pytest.mark.parametrize("template", TRAVERSALS)
def test_traversal_is_refused_in_every_path(alice: Client, alice_job: str, template: str) -> None:
    status, _, body = alice.get(template.format(job=alice_job))
    assert status in (400, 403, 404), (template, status)
    assert b"Imagine Web on" not in body and b"import" not in body and b"root:" not in body


def test_an_oversized_form_is_refused(alice: Client) -> None:
    body = b"csrf=" + alice.csrf.encode() + b"&prompt=" + b"a" * (5 * 1024 * 1024)
    status, _, _ = alice.server.request(
        "POST",
        "/imagine",
        body=body,
        headers={"Cookie": alice.cookie, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 413


def test_sign_in_links_lead_only_to_pages_of_this_site() -> None:
    assert safe_target("/region/abc") == "/region/abc"
    for target in ("//evil.example/x", "https://evil.example/", "\\\\evil", "evil", ""):
        assert safe_target(target) is None


def test_a_post_from_another_site_is_refused_even_for_sign_in(web_server: WebProcess, alice: Client) -> None:
    link = urllib.parse.urlsplit(web_server.link(ALICE, GUILD)).path
    status, headers, _ = web_server.request("POST", link, headers={"Origin": "https://evil.example"})
    assert status == 403 and "Set-Cookie" not in headers
    body = urllib.parse.urlencode({"csrf": alice.csrf, "prompt": "x"}).encode()
    status, _, _ = web_server.request(
        "POST",
        "/imagine",
        body=body,
        headers={
            "Cookie": alice.cookie,
            "Origin": "https://evil.example",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert status == 403
    assert web_server.request("POST", link, headers={"Origin": web_server.url})[0] == 303  # same site


def test_a_prompt_is_text_on_every_page_never_markup(alice: Client) -> None:
    status, headers, _ = alice.post("/imagine", {"prompt": "a <script>alert(1)</script> fox"})
    assert status == 303
    _, _, page = alice.get(headers["Location"])
    assert b"<script>alert(1)" not in page and b"&lt;script&gt;alert(1)" in page
    assert b"<script>alert(1)" not in alice.get("/")[2]


def test_a_moderator_of_another_server_sees_nothing_of_this_one(
    web_server: WebProcess, alice_job: str
) -> None:
    other_mod = Client(web_server, web_server.link(903, GUILD + 1, moderator=True))
    assert other_mod.get(f"/jobs/{alice_job}")[0] == 404
    _, _, desk = other_mod.get(f"/mod?user={ALICE}")
    assert alice_job.encode() not in desk
    status, _, body = other_mod.post("/mod/hide", {"job": alice_job, "do": "hide", "reason": "x"})
    assert status == 400 and b"not in this server; nothing was changed" in body


def test_the_database_keeps_only_hashes_of_links_and_cookies(web_server: WebProcess, alice: Client) -> None:
    link = web_server.link(ALICE, GUILD)
    secret = link.rsplit("/", 1)[1]
    cookie = alice.cookie.split("=", 1)[1]
    stored = b"".join(path.read_bytes() for path in web_server.data_dir.glob("imagine.db*"))
    assert stored and secret.encode() not in stored and cookie.encode() not in stored
    assert token_hash(secret).encode() in stored


def test_region_takes_only_an_upscale_and_a_mask_that_fits(
    alice: Client, mallory: Client, alice_job: str
) -> None:
    status, headers, _ = alice.post(f"/jobs/{alice_job}/action", {"do": "U1"})
    assert status == 303
    upscale = headers["Location"].rsplit("/", 1)[1]

    def send(client: Client, job_id: str, mask: bytes) -> tuple[int, bytes]:
        boundary = "imagine-test-boundary"
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="mask"; filename="mask.png"\r\n'
                f"Content-Type: image/png\r\n\r\n"
            ).encode()
            + mask
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {
            "Cookie": client.cookie,
            "X-CSRF-Token": client.csrf,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        }
        status, _, answer = client.server.request("POST", f"/region/{job_id}", body=body, headers=headers)
        return status, answer

    status, answer = send(alice, upscale, b"not a picture")
    assert status == 400 and b"not an image this bot can read" in answer
    assert send(alice, alice_job, b"x")[0] == 404  # a grid is not an upscale
    assert send(mallory, upscale, b"x")[0] == 404  # nor is another member's image theirs
    assert alice.get(f"/region/{upscale}")[0] == 200
