"""The moderator's desk over HTTP, in process (the web app on real services and store, the
stand-in engine): bans, banned words and reports write the same audit rows as Discord's `/mod`,
and a refused action changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from bot.core.services import Services
from bot.core.web_access import WebMember, issue_link
from bot.settings import Settings
from bot.web.app import WebServer
from tests.support.stand_in_engine import StandInEngine

GUILD, MOD, MEMBER = 31, 3100, 3200


class Desk:
    def __init__(self, services: Services, server: WebServer, http: aiohttp.ClientSession) -> None:
        self.services, self.server, self.http = services, server, http
        self.csrf = ""

    async def sign_in(self, user: int, *, moderator: bool) -> None:
        link = await issue_link(self.services.store, self.server.url, WebMember(user, "m", GUILD, moderator))
        async with self.http.post(link) as response:
            page = await response.text()
        self.csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]

    async def post(self, path: str, **fields: str) -> tuple[int, str]:
        async with self.http.post(self.server.url + path, data={"csrf": self.csrf, **fields}) as response:
            return response.status, await response.text()

    async def audit(self) -> list[tuple[str, int | None, str | None]]:
        entries = await self.services.store.audit_log(GUILD)
        return [(entry.action, entry.target_user_id, entry.target_job_id) for entry in entries]


@pytest_asyncio.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    services = await Services.start(Settings(data_dir=tmp_path, model="stand-in"), engine=StandInEngine())
    server = WebServer(services, "127.0.0.1", 0, None)
    await server.start()
    try:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # an IP host
            desk = Desk(services, server, http)
            await desk.sign_in(MOD, moderator=True)
            yield desk
    finally:
        await server.stop()
        await services.stop(grace_s=0.0)


async def test_ban_and_unban_write_the_audit_rows_of_mod_ban(desk: Desk) -> None:
    status, page = await desk.post("/mod/ban", user="55", reason="spam", duration="7d")
    assert status == 200 and "Banned 55" in page
    [ban] = await desk.services.store.bans(GUILD)
    assert (ban.user_id, ban.reason, ban.moderator_id, ban.expires_at is not None) == (55, "spam", MOD, True)
    status, page = await desk.post("/mod/unban", user="55")
    assert status == 200 and "Lifted the ban on 55" in page
    assert await desk.services.store.bans(GUILD) == []
    assert await desk.audit() == [("unban", 55, None), ("ban", 55, None)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"user": str(MOD)}, "You can't ban yourself."),
        ({"user": "55", "duration": "soon"}, "Can't read the duration"),
        ({"user": "bob"}, "must be a Discord user id"),
        ({"user": ""}, "Give the user id to ban."),
    ],
)
async def test_a_refused_ban_changes_nothing(desk: Desk, fields: dict[str, str], message: str) -> None:
    status, page = await desk.post("/mod/ban", **fields)
    assert status == 400 and message in page.replace("&#39;", "'")
    assert await desk.services.store.bans(GUILD) == [] and await desk.audit() == []


async def test_banned_words_are_added_once_and_removed(desk: Desk) -> None:
    assert (await desk.post("/mod/words/add", pattern="Grim Reaper"))[0] == 200
    [rule] = await desk.services.store.banned_words(GUILD)
    assert (await desk.post("/mod/words/add", pattern="grim reaper"))[0] == 400  # already listed
    assert (await desk.post("/mod/words/add", pattern="(a+)+", regex="yes"))[0] == 400  # a risky regex
    status, _ = await desk.post("/mod/words/remove", pattern=rule.pattern)
    assert status == 200 and await desk.services.store.banned_words(GUILD) == []
    assert [action for action, _, _ in await desk.audit()] == ["word_remove", "word_add"]


async def test_reports_are_closed_only_in_this_server(desk: Desk) -> None:
    store = desk.services.store
    job = await store.create_job(user_id=MEMBER, guild_id=GUILD, kind="imagine", prompt="a fox")
    elsewhere = await store.create_job(user_id=MEMBER, guild_id=GUILD + 1, kind="imagine", prompt="a cat")
    report = await store.add_report(job.id, GUILD, MEMBER + 1, "rude")
    foreign = await store.add_report(elsewhere.id, GUILD + 1, MEMBER + 1, "rude")
    assert (await desk.post(f"/mod/reports/{foreign.id}", state="actioned"))[0] == 400
    assert (await desk.post(f"/mod/reports/{report.id}", state="maybe"))[0] == 400
    status, page = await desk.post(f"/mod/reports/{report.id}", state="actioned")
    assert status == 200 and f"Marked report {report.id} actioned" in page
    assert await store.reports(GUILD) == [] and len(await store.reports(GUILD + 1)) == 1
    assert await desk.audit() == [("report_actioned", None, job.id)]


async def test_a_member_may_not_use_the_desk(desk: Desk) -> None:
    await desk.sign_in(MEMBER, moderator=False)
    for path, fields in [("/mod/ban", {"user": "55"}), ("/mod/hide", {"job": "x", "do": "hide"})]:
        status, page = await desk.post(path, **fields)
        assert status == 403 and "for this server's moderators" in page
    assert await desk.services.store.bans(GUILD) == []
