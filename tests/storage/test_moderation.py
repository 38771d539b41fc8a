"""Bans, banned words, reports, hiding, the audit log and per-guild settings."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage.errors import InvalidInputError, NotFoundError
from storage.models import utcnow
from storage.store import Store

GUILD, OTHER_GUILD, MOD, USER = 100, 200, 9, 5


async def test_a_guild_ban_applies_in_that_guild_only_and_a_global_one_everywhere(store: Store) -> None:
    await store.ban(USER, GUILD, "spam", MOD)
    assert (await store.active_ban(USER, GUILD)).reason == "spam"  # type: ignore[union-attr]
    assert await store.active_ban(USER, OTHER_GUILD) is None
    assert await store.active_ban(USER, None) is None
    assert await store.active_ban(USER + 1, GUILD) is None
    await store.ban(USER, None, "everywhere", MOD)
    assert (await store.active_ban(USER, OTHER_GUILD)).guild_id is None  # type: ignore[union-attr]
    assert (await store.active_ban(USER, None)).reason == "everywhere"  # type: ignore[union-attr]


async def test_a_ban_expires_on_time(store: Store) -> None:
    now = utcnow()
    ban = await store.ban(USER, GUILD, "cool down", MOD, expires_at=now + timedelta(hours=1))
    assert ban.expires_at is not None
    assert (await store.active_ban(USER, GUILD, now=now + timedelta(minutes=59))) is not None
    assert await store.active_ban(USER, GUILD, now=now + timedelta(minutes=61)) is None
    with pytest.raises(InvalidInputError, match="expiry must be in the future"):
        await store.ban(USER, OTHER_GUILD, "late", MOD, expires_at=now - timedelta(seconds=1))
    assert await store.active_ban(USER, OTHER_GUILD) is None


async def test_banning_again_updates_the_ban_and_unban_lifts_it(store: Store) -> None:
    first = await store.ban(USER, GUILD, "spam", MOD)
    second = await store.ban(USER, GUILD, "spam, again", MOD + 1)
    assert second.id == first.id and second.reason == "spam, again"
    assert [ban.reason for ban in await store.bans(GUILD)] == ["spam, again"]
    assert await store.unban(USER, GUILD, MOD) is True
    assert await store.active_ban(USER, GUILD) is None
    assert await store.unban(USER, GUILD, MOD) is False  # nothing left to lift
    assert await store.bans(GUILD) == []
    history = await store.bans(GUILD, include_inactive=True)
    assert len(history) == 1 and history[0].lifted_by == MOD and history[0].lifted_at is not None
    actions = [entry.action for entry in await store.audit_log(GUILD)]
    assert actions == ["unban", "ban", "ban"]  # newest first, one entry per change


async def test_banned_words_per_guild_plus_global_rules(store: Store) -> None:
    await store.add_banned_word(GUILD, "  gore ", False, MOD)
    await store.add_banned_word(GUILD, r"\bnsfw\w*", True, MOD)
    await store.add_banned_word(None, "global", False, MOD)
    await store.add_banned_word(OTHER_GUILD, "elsewhere", False, MOD)
    again = await store.add_banned_word(GUILD, "gore", False, MOD)  # adding twice keeps one rule
    rules = await store.banned_words(GUILD)
    assert [(rule.pattern, rule.is_regex) for rule in rules] == [
        ("gore", False),
        (r"\bnsfw\w*", True),
        ("global", False),
    ]
    assert again.id == rules[0].id
    assert [rule.pattern for rule in await store.banned_words(None)] == ["global"]
    assert await store.remove_banned_word(GUILD, "gore", MOD) is True
    assert await store.remove_banned_word(GUILD, "gore", MOD) is False
    assert [rule.pattern for rule in await store.banned_words(GUILD)] == [r"\bnsfw\w*", "global"]
    entries = await store.audit_log(GUILD)
    assert [entry.action for entry in entries] == ["word_remove", "word_add", "word_add"]
    assert entries[-1].details == {"pattern": "gore", "is_regex": False}


@pytest.mark.parametrize(
    ("pattern", "is_regex", "message"),
    [
        ("", False, "cannot be empty"),
        ("   ", False, "cannot be empty"),
        ("(unclosed", True, "does not compile"),
        ("x" * 501, False, "at most 500 characters"),
    ],
)
async def test_a_bad_banned_word_is_refused(store: Store, pattern: str, is_regex: bool, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await store.add_banned_word(GUILD, pattern, is_regex, MOD)
    assert await store.banned_words(GUILD) == []
    assert await store.audit_log(GUILD) == []


async def test_reports_open_resolve_and_are_audited(store: Store) -> None:
    job = await store.create_job(user_id=USER, kind="imagine", guild_id=GUILD)
    first = await store.add_report(job.id, GUILD, reporter_id=7, reason="gross")
    duplicate = await store.add_report(job.id, GUILD, reporter_id=7, reason="still gross")
    second = await store.add_report(job.id, GUILD, reporter_id=8, reason="off topic")
    assert duplicate.id == first.id and first.state == "open"
    assert [report.reporter_id for report in await store.reports(GUILD)] == [7, 8]
    assert await store.reports(OTHER_GUILD) == []
    resolved = await store.resolve_report(first.id, MOD, "actioned")
    assert (resolved.state, resolved.resolved_by) == ("actioned", MOD) and resolved.resolved_at is not None
    assert [report.id for report in await store.reports(GUILD)] == [second.id]
    assert [report.id for report in await store.reports(GUILD, state="actioned")] == [first.id]
    assert len(await store.reports(GUILD, state=None)) == 2
    assert len(await store.reports(None)) == 1
    (entry,) = await store.audit_log(GUILD)
    assert (entry.action, entry.target_job_id, entry.details) == (
        "report_actioned",
        job.id,
        {"report_id": first.id},
    )
    with pytest.raises(NotFoundError, match="no job"):
        await store.add_report("missing", GUILD, 7, "x")
    with pytest.raises(NotFoundError, match="no report with id 999"):
        await store.resolve_report(999, MOD, "resolved")
    with pytest.raises(InvalidInputError, match="resolved as one of"):
        await store.resolve_report(second.id, MOD, "open")
    with pytest.raises(InvalidInputError, match="unknown report state"):
        await store.reports(GUILD, state="pending")


async def test_hiding_a_job_records_who_and_why_and_showing_it_clears_that(store: Store) -> None:
    job = await store.create_job(user_id=USER, kind="imagine", guild_id=GUILD)
    hidden = await store.set_hidden(job.id, True, MOD, "breaks rule 3")
    assert (hidden.hidden, hidden.hidden_by, hidden.hidden_reason) == (True, MOD, "breaks rule 3")
    shown = await store.set_hidden(job.id, False, MOD + 1, "appeal accepted")
    assert (shown.hidden, shown.hidden_by, shown.hidden_reason) == (False, None, None)
    entries = await store.audit_log(GUILD, target_job_id=job.id)
    assert [(entry.action, entry.moderator_id, entry.reason) for entry in entries] == [
        ("unhide", MOD + 1, "appeal accepted"),
        ("hide", MOD, "breaks rule 3"),
    ]
    assert all(entry.target_user_id == USER for entry in entries)
    with pytest.raises(NotFoundError):
        await store.set_hidden("missing", True, MOD, "x")


async def test_audit_entries_written_by_the_caller_and_opting_out(store: Store) -> None:
    await store.ban(USER, GUILD, "quiet", MOD, audit=False)
    entry = await store.audit(GUILD, MOD, "settings", reason="tidy up", details={"author_only_buttons": True})
    await store.audit(OTHER_GUILD, MOD, "ban", target_user_id=USER)
    assert [e.id for e in await store.audit_log(GUILD)] == [entry.id]
    assert entry.details == {"author_only_buttons": True} and entry.created_at is not None
    assert len(await store.audit_log(None)) == 2
    assert len(await store.audit_log(None, target_user_id=USER)) == 1
    assert len(await store.audit_log(None, limit=1)) == 1
    with pytest.raises(InvalidInputError, match="audit action"):
        await store.audit(GUILD, MOD, "")


async def test_guild_settings_default_update_and_validate(store: Store) -> None:
    defaults = await store.guild_settings(GUILD)
    assert (defaults.allowed_channel_ids, defaults.author_only_buttons, defaults.max_queued_per_user) == (
        [],
        False,
        None,
    )
    updated = await store.update_guild_settings(
        GUILD, allowed_channel_ids=[3, 4, 3], author_only_buttons=True, max_running_per_user=2
    )
    assert updated.allowed_channel_ids == [3, 4]
    again = await store.update_guild_settings(GUILD, max_queued_per_user=10)
    assert (again.allowed_channel_ids, again.author_only_buttons, again.max_running_per_user) == (
        [3, 4],
        True,
        2,
    )
    read = await store.guild_settings(GUILD)
    assert (read.max_queued_per_user, read.max_running_per_user) == (10, 2)
    assert (await store.guild_settings(OTHER_GUILD)).allowed_channel_ids == []
    for fields, message in [
        ({"colour": "red"}, "unknown guild setting"),
        ({"allowed_channel_ids": ["general"]}, "must be a list of channel ids"),
        ({"author_only_buttons": "yes"}, "true or false"),
        ({"max_running_per_user": 0}, "at least 1"),
        ({"log_channel_id": "x"}, "must be an id"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            await store.update_guild_settings(GUILD, **fields)
    assert (await store.guild_settings(GUILD)).max_running_per_user == 2


async def test_user_suffix_is_kept_trimmed_and_can_be_cleared(store: Store) -> None:
    assert (await store.user_prefs(USER)).suffix == ""
    await store.set_user_suffix(USER, "  --ar 16:9 --s 250 ")
    assert (await store.user_prefs(USER)).suffix == "--ar 16:9 --s 250"
    await store.set_user_suffix(USER, "")
    assert (await store.user_prefs(USER)).suffix == ""
    with pytest.raises(InvalidInputError, match="at most 1000 characters"):
        await store.set_user_suffix(USER, "x" * 1001)
