"""`/fast`, `/relax`, `/turbo` (a member's mode) and `/fastmod` (moderators: budgets and grants)."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.core import fast
from bot.discord.app import BotCog, ImagineBot
from bot.discord.permissions import is_moderator
from bot.discord.replies import refuse
from storage.records import GuildSettingsFields

log = logging.getLogger(__name__)

MAX_MINUTES = 1_000_000  # about two years of GPU time: anything larger is a typo


async def fast_line(bot: ImagineBot, interaction: discord.Interaction) -> str:
    """The member's mode and Fast time on this server, as /info and the mode commands show it."""
    store = bot.services.store
    member = await store.member_settings(interaction.user.id, interaction.guild_id)
    if interaction.guild_id is None:
        return f"**Mode:** {member.speed}"
    roles = tuple(role.id for role in getattr(interaction.user, "roles", None) or [])
    now = await fast.balance(store, interaction.user.id, interaction.guild_id, roles)
    left = now.left_s
    if left is None:
        time = "unlimited on this server"
    else:
        when = int(now.resets_at.timestamp())
        time = f"{fast.describe_time(left)} left, resets <t:{when}:R> (<t:{when}:f>)"
    return f"**Mode:** {member.speed} · **Fast time:** {time}"


class FastCog(BotCog, name="Fast"):
    """Fast, Relax and Turbo modes, and the moderators' Fast budgets."""

    fastmod = app_commands.Group(
        name="fastmod", description="Moderators: Fast time budgets and grants", guild_only=True
    )

    async def _set_speed(self, interaction: discord.Interaction, speed: str) -> None:
        if speed == "turbo" and not self.bot.services.jobs.turbo_allowed:
            await refuse(
                interaction, "Turbo mode is off on this bot (the operator has not set IMAGINE_TURBO)."
            )
            return
        await self.bot.services.store.update_member_settings(
            interaction.user.id, interaction.guild_id, speed=speed
        )
        line = await fast_line(self.bot, interaction)
        await interaction.response.send_message(
            f"Your jobs now run in {speed.title()} mode.\n{line}", ephemeral=True
        )

    @app_commands.command(name="fast")
    @app_commands.guild_only()
    async def fast_mode(self, interaction: discord.Interaction) -> None:
        """Run your jobs in Fast mode (spends your Fast time)"""
        await self._set_speed(interaction, "fast")

    @app_commands.command(name="relax")
    @app_commands.guild_only()
    async def relax_mode(self, interaction: discord.Interaction) -> None:
        """Run your jobs in Relax mode (free; they wait behind Fast jobs)"""
        await self._set_speed(interaction, "relax")

    @app_commands.command(name="turbo")
    @app_commands.guild_only()
    async def turbo_mode(self, interaction: discord.Interaction) -> None:
        """Run your jobs in Turbo mode (fewer steps), if the bot allows it"""
        await self._set_speed(interaction, "turbo")

    async def _moderator(self, interaction: discord.Interaction) -> bool:
        assert interaction.guild_id is not None  # the group is guild-only
        settings = await self.bot.services.store.guild_settings(interaction.guild_id)
        if is_moderator(interaction, settings):
            return True
        await refuse(interaction, "Only moderators can change Fast time.")
        return False

    @fastmod.command(name="budget")
    async def budget(
        self,
        interaction: discord.Interaction,
        minutes: float | None = None,
        role: discord.Role | None = None,
        period_hours: int | None = None,
    ) -> None:
        """Fast minutes per member per period (for everyone, or a role)

        Args:
            minutes: GPU minutes of Fast time per period; leave out (with no role) for unlimited
            role: give this role its own budget instead of the server's
            period_hours: the length of a period in hours (default 720, 30 days)
        """
        if not await self._moderator(interaction):
            return
        assert interaction.guild_id is not None
        if minutes is not None and not 0 <= minutes <= MAX_MINUTES:
            await refuse(
                interaction, f"A Fast budget must be from 0 to {MAX_MINUTES:,} minutes; {minutes:g} is not."
            )
            return
        if period_hours is not None and not 1 <= period_hours <= 8760:
            await refuse(interaction, f"A Fast period must be from 1 to 8760 hours; {period_hours} is not.")
            return
        store = self.bot.services.store
        current = await store.guild_settings(interaction.guild_id)
        seconds = round(minutes * 60) if minutes is not None else None
        if role is not None:
            per_role = dict(current.fast_role_seconds or {})
            if seconds is None:
                per_role.pop(str(role.id), None)
            else:
                per_role[str(role.id)] = seconds
            changes: GuildSettingsFields = {"fast_role_seconds": per_role}
            said = f"{role.mention}: " + (
                f"{minutes:g} minutes" if minutes is not None else "the server's budget"
            )
        else:
            changes = {"fast_seconds": seconds}
            said = f"everyone: {minutes:g} minutes" if minutes is not None else "everyone: unlimited"
        if period_hours is not None:
            changes["fast_period_hours"] = period_hours
        await store.update_guild_settings(interaction.guild_id, **changes)
        await store.audit(
            interaction.guild_id,
            interaction.user.id,
            "fast_budget",
            details={"minutes": minutes, "role_id": role.id if role else None, "period_hours": period_hours},
        )
        await interaction.response.send_message(f"Fast budget per period set for {said}.", ephemeral=True)

    @fastmod.command(name="grant")
    async def grant(self, interaction: discord.Interaction, member: discord.Member, minutes: float) -> None:
        """Give a member extra Fast minutes for the current period

        Args:
            member: who gets the time
            minutes: extra GPU minutes (more than 0)
        """
        if not await self._moderator(interaction):
            return
        assert interaction.guild_id is not None
        if not 0 < minutes <= MAX_MINUTES:
            await refuse(
                interaction,
                f"A grant must be more than 0 and at most {MAX_MINUTES:,} minutes; {minutes:g} is not.",
            )
            return
        store = self.bot.services.store
        now = await fast.balance(store, member.id, interaction.guild_id)
        await store.add_fast_usage(member.id, interaction.guild_id, now.period_start, granted_s=minutes * 60)
        await store.audit(
            interaction.guild_id,
            interaction.user.id,
            "fast_grant",
            target_user_id=member.id,
            details={"minutes": minutes},
        )
        await interaction.response.send_message(
            f"Granted {minutes:g} Fast minutes to {member.mention} for this period.", ephemeral=True
        )


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(FastCog(bot))
