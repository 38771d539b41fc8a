"""Who can see and use `/mod`, through SimCord's command visibility and the bot's own check."""

from __future__ import annotations

import discord
import pytest
from simcord import SetupError

from tests.bot.discord.test_mod_helpers import make_job

MOD_COMMANDS = {
    "mod history",
    "mod job",
    "mod ban",
    "mod unban",
    "mod bans",
    "mod words add",
    "mod words remove",
    "mod words list",
    "mod reports",
    "mod audit",
    "mod role",
}


async def test_members_without_manage_messages_neither_see_nor_run_mod(world):
    seen = set(world.alice.available_commands(world.channel))
    assert not any(name.startswith("mod") for name in seen)
    with pytest.raises(SetupError, match="not visible"):
        await world.alice.slash(world.channel, "mod bans")


async def test_moderators_see_every_mod_command(world):
    seen = set(world.mod.available_commands(world.channel))
    assert seen >= MOD_COMMANDS
    assert {"mod channels allow", "mod channels spoiler", "mod channels log"} <= seen


async def test_report_menu_is_for_everyone(world):
    job = await make_job(world, world.bob)
    shown = await world.alice.context_menu(world.channel, "Report job", world.message(job.message_id))
    assert shown.modal is not None and shown.modal["title"] == "Report this job"


async def test_visibility_override_does_not_grant_moderation(world):
    """A server admin can show /mod to a role through integration settings; the bot still
    refuses anyone who is neither Manage Messages nor the configured moderator role."""
    command = world.env.backend.find_command("mod", world.guild.id)
    world.guild.set_command_permissions(int(command["id"]), {world.bob: True})
    assert "mod words add" in world.bob.available_commands(world.channel)

    result = await world.bob.slash(world.channel, "mod words add", pattern="gore")

    assert result.ephemeral and "Only moderators" in result.response.content
    assert await world.services.store.banned_words(world.guild.id) == []


async def test_configured_moderator_role_can_moderate(world):
    role = world.guild.create_role("Imagine mods")
    await world.services.store.update_guild_settings(world.guild.id, moderator_role_id=role.id)
    helper = world.guild.add_member(world.env.create_user("helper"), roles=[role])
    command = world.env.backend.find_command("mod", world.guild.id)
    world.guild.set_command_permissions(int(command["id"]), {role: True})

    result = await helper.slash(world.channel, "mod words add", pattern="gore")

    assert "Added `gore`" in result.response.content
    assert [w.pattern for w in await world.services.store.banned_words(world.guild.id)] == ["gore"]


async def test_mod_role_setting_needs_manage_server(world):
    role = world.guild.create_role("Imagine mods")
    result = await world.mod.slash(world.channel, "mod role", role=role)
    assert "Manage Server" in result.response.content
    assert (await world.services.store.guild_settings(world.guild.id)).moderator_role_id is None

    admins = world.guild.create_role(
        "Admins", permissions=discord.Permissions(manage_guild=True, manage_messages=True)
    )
    admin = world.guild.add_member(world.env.create_user("admin"), roles=[admins])
    result = await admin.slash(world.channel, "mod role", role=role)
    assert (await world.services.store.guild_settings(world.guild.id)).moderator_role_id == role.id
    [entry] = await world.services.store.audit_log(world.guild.id)
    assert entry.action == "moderator_role" and entry.moderator_id == admin.id
