"""The server's settings as moderators change them: banned words, channels, result buttons,
per-member limits, the log channel and the moderator role.

`SettingsDesk` extends the moderation desk (desk.py) and is the base of `ModerationCog` (cog.py):
the cog's `/mod words ...`, `/mod channels ...`, `/mod settings ...` and `/mod role` commands read
their arguments and call these. A settings change is one store write plus its audit entry
(`_save`); a banned word's store call writes its own audit entry.
"""

from __future__ import annotations

import contextlib
from typing import Literal, Unpack, cast

import discord

from bot.core.limits import Limits
from bot.core.moderation import RuleError, rule_text, validate_rule
from bot.discord.moderation.desk import DeskActions, reply
from bot.discord.replies import clip
from storage.models import GuildSettings
from storage.records import GuildSettingsFields, JSONObject

MAX_RUNNING_LIMIT = 10  # per-member limits a moderator may set; operators' own defaults are not capped
MAX_QUEUED_LIMIT = 50


class SettingsDesk(DeskActions):
    """The settings half of the moderation desk; see the module docstring."""

    async def allow_channel(
        self, interaction: discord.Interaction, settings: GuildSettings, channel: discord.TextChannel
    ) -> None:
        allowed = [int(c) for c in settings.allowed_channel_ids or []]
        if channel.id in allowed:
            await reply(interaction, f"{channel.mention} is already allowed.")
            return
        await self._save(
            interaction,
            "channel_allow",
            f"allowed /imagine in {channel.mention}",
            allowed_channel_ids=[*allowed, channel.id],
        )

    async def disallow_channel(
        self, interaction: discord.Interaction, settings: GuildSettings, channel: discord.TextChannel
    ) -> None:
        allowed = [int(c) for c in settings.allowed_channel_ids or []]
        if channel.id not in allowed:
            await reply(interaction, f"{channel.mention} is not on the allowed list.")
            return
        rest = [c for c in allowed if c != channel.id]
        note = " No list is left, so the bot answers in every channel." if not rest else ""
        await self._save(
            interaction,
            "channel_disallow",
            f"removed {channel.mention} from the allowed channels.{note}",
            allowed_channel_ids=rest,
        )

    async def spoiler_channel(
        self,
        interaction: discord.Interaction,
        settings: GuildSettings,
        channel: discord.TextChannel,
        enabled: bool,
    ) -> None:
        current = [int(c) for c in settings.spoiler_channel_ids or []]
        if enabled:
            updated = current if channel.id in current else [*current, channel.id]
        else:
            updated = [c for c in current if c != channel.id]
        await self._save(
            interaction,
            "channel_spoiler",
            f"{'spoilers' if enabled else 'no longer spoilers'} results in {channel.mention}",
            spoiler_channel_ids=updated,
        )

    async def set_log_channel(
        self, interaction: discord.Interaction, settings: GuildSettings, channel: discord.TextChannel | None
    ) -> None:
        await self._point(
            interaction, "log_channel_id", channel, "set the log channel to", "turned the log channel off"
        )

    async def set_moderator_role(
        self, interaction: discord.Interaction, settings: GuildSettings, role: discord.Role | None
    ) -> None:
        if not interaction.permissions.manage_guild:
            await reply(interaction, "Setting the moderator role needs the Manage Server permission.")
            return
        await self._point(
            interaction, "moderator_role_id", role, "set the moderator role to", "cleared the moderator role"
        )

    async def add_word(
        self, interaction: discord.Interaction, settings: GuildSettings, pattern: str, regex: bool
    ) -> None:
        try:
            stored = validate_rule(pattern, regex)
        except RuleError as exc:
            await reply(interaction, str(exc))
            return
        existing = await self.store.banned_words(interaction.guild_id)
        if any(rule.pattern == stored and bool(rule.is_regex) == regex for rule in existing):
            await reply(interaction, f"`{stored}` is already on the list.")
            return
        rule = await self.store.add_banned_word(interaction.guild_id, stored, regex, interaction.user.id)
        shown = rule_text(rule)
        await self.record(
            interaction,
            "word_add",
            f"added the banned {'expression' if regex else 'word'} `{shown}`",
        )
        await reply(interaction, f"Added `{shown}`. Prompts containing it are refused from now on.")

    async def remove_word(
        self, interaction: discord.Interaction, settings: GuildSettings, pattern: str
    ) -> None:
        candidates = [pattern.strip()]
        if pattern.startswith("/") and pattern.endswith("/") and len(pattern) > 2:
            candidates.insert(0, pattern[1:-1])
        with contextlib.suppress(RuleError):  # words are stored normalised
            candidates.append(validate_rule(pattern, False))
        for candidate in dict.fromkeys(candidates):
            if await self.store.remove_banned_word(interaction.guild_id, candidate, interaction.user.id):
                await self.record(interaction, "word_remove", f"removed the banned word `{candidate}`")
                await reply(interaction, f"Removed `{candidate}`.")
                return
        rules = await self.store.banned_words(interaction.guild_id)
        if any(rule.guild_id is None and rule.pattern in candidates for rule in rules):
            await reply(
                interaction,
                f"`{clip(pattern, 100)}` is a rule for every server, set by the bot's operator; "
                "only the operator can remove it.",
            )
            return
        await reply(interaction, f"`{clip(pattern, 100)}` is not on the list; see `/mod words list`.")

    async def set_button_access(
        self, interaction: discord.Interaction, settings: GuildSettings, who: str
    ) -> None:
        author_only = who == "author"
        await self._switch(
            interaction,
            "author_only_buttons",
            bool(settings.author_only_buttons),
            author_only,
            "Result buttons are already usable by " + ("only a job's author." if author_only else "anyone."),
            (
                "made result buttons usable only by the job's author (and moderators)",
                "made result buttons usable by anyone",
            ),
        )

    async def set_stealth(
        self, interaction: discord.Interaction, settings: GuildSettings, allow: bool
    ) -> None:
        await self._switch(
            interaction,
            "allow_stealth",
            bool(settings.allow_stealth),
            allow,
            f"Stealth mode is already {'allowed' if allow else 'not allowed'}.",
            (
                "allowed Stealth mode (members may keep their new jobs to themselves and moderators)",
                "stopped allowing Stealth mode (new jobs are public; stealth jobs made before stay so)",
            ),
        )

    async def _point(
        self,
        interaction: discord.Interaction,
        field: Literal["log_channel_id", "moderator_role_id"],
        target: discord.TextChannel | discord.Role | None,
        set_to: str,
        cleared: str,
    ) -> None:
        """A server setting that names one channel or role, or none: saved with its summary."""
        fields = cast(GuildSettingsFields, {field: target.id if target else None})  # one of its id keys
        summary = f"{set_to} {target.mention}" if target else cleared
        await self._save(interaction, field.removesuffix("_id"), summary, **fields)

    async def _switch(
        self,
        interaction: discord.Interaction,
        field: Literal["author_only_buttons", "allow_stealth"],
        now: bool,
        wanted: bool,
        already: str,
        summaries: tuple[str, str],
    ) -> None:
        """An on/off server setting: said as it is when unchanged, else saved with its summary."""
        if now == wanted:
            await reply(interaction, already)
            return
        fields = cast(GuildSettingsFields, {field: wanted})  # `field` is one of its bool keys
        await self._save(interaction, field, summaries[0] if wanted else summaries[1], **fields)

    async def set_user_limits(
        self,
        interaction: discord.Interaction,
        settings: GuildSettings,
        running: int | None,
        queued: int | None,
        reset: bool,
    ) -> None:
        if reset and (running is not None or queued is not None):
            await reply(interaction, "Give either `reset` or new limits, not both.")
            return
        if not reset and running is None and queued is None:
            await reply(interaction, "Give `running`, `queued` or both (or `reset` for the bot's defaults).")
            return
        # Discord enforces the ranges; checked again so a stale client can't store nonsense.
        if running is not None and not 1 <= running <= MAX_RUNNING_LIMIT:
            await reply(interaction, f"`running` must be 1 to {MAX_RUNNING_LIMIT}.")
            return
        if queued is not None and not 1 <= queued <= MAX_QUEUED_LIMIT:
            await reply(interaction, f"`queued` must be 1 to {MAX_QUEUED_LIMIT}.")
            return
        if reset:
            fields: GuildSettingsFields = {"max_running_per_user": None, "max_queued_per_user": None}
        else:
            fields = {
                "max_running_per_user": running if running is not None else settings.max_running_per_user,
                "max_queued_per_user": queued if queued is not None else settings.max_queued_per_user,
            }
        if (settings.max_running_per_user, settings.max_queued_per_user) == tuple(fields.values()):
            now = self.user_limits(settings)
            await reply(
                interaction,
                f"The limits are already {now.max_running_per_user} running and "
                f"{now.max_queued_per_user} waiting jobs per member.",
            )
            return
        new = self.default_limits().with_overrides(
            fields.get("max_running_per_user"), fields.get("max_queued_per_user")
        )
        summary = (
            "reset the per-member limits to the bot's defaults" if reset else "set the per-member limits"
        ) + (
            f" ({new.max_running_per_user} running, {new.max_queued_per_user} waiting jobs;"
            " jobs already queued keep theirs)"
        )
        await self._save(interaction, "user_limits", summary, **fields)

    async def show_settings(self, interaction: discord.Interaction, settings: GuildSettings) -> None:
        await reply(interaction, self.settings_text(settings))

    def settings_text(self, settings: GuildSettings) -> str:
        """Every server setting, as `/mod channels show` and `/mod settings show` print it."""

        def mentions(ids: list[int]) -> str:
            return ", ".join(f"<#{c}>" for c in ids) or "none"

        allowed = (
            mentions(settings.allowed_channel_ids or []) if settings.allowed_channel_ids else "every channel"
        )
        role = (
            f"<@&{settings.moderator_role_id}>"
            if settings.moderator_role_id
            else "none (Manage Messages only)"
        )
        buttons = (
            "only the job's author (and moderators)"
            if settings.author_only_buttons
            else "anyone in the channel"
        )
        stealth = "allowed" if settings.allow_stealth else "not allowed (every job is public)"
        limits = self.user_limits(settings)
        running, queued = limits.max_running_per_user, limits.max_queued_per_user
        own = settings.max_running_per_user is not None or settings.max_queued_per_user is not None
        lines = [
            f"**/imagine answers in:** {allowed}",
            f"**Results spoilered in:** {mentions(settings.spoiler_channel_ids or [])}",
            f"**Log channel:** {f'<#{settings.log_channel_id}>' if settings.log_channel_id else 'none'}",
            f"**Moderator role:** {role}",
            f"**Result buttons usable by:** {buttons}",
            f"**Stealth mode:** {stealth}",
            f"**Per-member limits:** {running} running, {queued} waiting"
            + (" (this server's)" if own else " (the bot's defaults)"),
        ]
        return "\n".join(lines)

    def default_limits(self) -> Limits:
        """The operator's limits (IMAGINE_MAX_RUNNING_PER_USER / _QUEUED_), used where a server
        has none of its own."""
        dispatcher = getattr(self.bot.services, "dispatcher", None)  # type: ignore[attr-defined]
        return getattr(dispatcher, "limits", None) or Limits()

    def user_limits(self, settings: GuildSettings) -> Limits:
        """The limits in force here: the server's own, else the bot's defaults; the same rule the
        job service applies (`JobService._limits_for`)."""
        return self.default_limits().with_overrides(
            settings.max_running_per_user, settings.max_queued_per_user
        )

    async def _save(
        self,
        interaction: discord.Interaction,
        action: str,
        summary: str,
        **fields: Unpack[GuildSettingsFields],
    ) -> None:
        await self.store.update_guild_settings(interaction.guild_id, **fields)  # type: ignore[arg-type]  # guarded
        await self.store.audit(
            # The settings' values are JSON (ids, flags, numbers): they go into the audit entry as they are.
            interaction.guild_id,
            interaction.user.id,
            action,
            details=cast(JSONObject, dict(fields)),
        )
        await self.record(interaction, action, summary)
        await reply(interaction, summary[0].upper() + summary[1:] + ("" if summary.endswith(".") else "."))
