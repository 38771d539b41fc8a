"""Sign-in links to Imagine Web, answered privately: `/web`, and the Vary (Region) button.

Discord shows a link button to everyone who sees a message, so a result message cannot carry a
member's own one-time link. The Vary (Region) button is therefore a normal button: a click
answers the clicking member alone with their link, which opens the editor after sign-in.
"""

from __future__ import annotations

import logging

import discord

from bot.core.services import Services
from bot.core.web_access import LINK_TTL, WebMember, issue_link, public_base
from bot.discord.permissions import is_moderator
from bot.discord.replies import refuse

log = logging.getLogger(__name__)

NOT_SET_UP = "Imagine Web is not set up on this bot (the operator sets IMAGINE_WEB_URL or IMAGINE_WEB_PORT)."


async def send_link(
    interaction: discord.Interaction,
    services: Services,
    *,
    target: str | None = None,
    label: str = "Open Imagine Web",
) -> None:
    """Answer the member, privately, with a one-time sign-in link for this guild."""
    settings = services.settings
    if not settings.web_enabled:
        await refuse(interaction, NOT_SET_UP)
        return
    if interaction.guild_id is None:
        await refuse(interaction, "Imagine Web links are made inside a server.")
        return
    guild_settings = await services.store.guild_settings(interaction.guild_id)
    who = WebMember(
        interaction.user.id,
        interaction.user.display_name,
        interaction.guild_id,
        is_moderator(interaction, guild_settings),
    )
    url = await issue_link(
        services.store,
        public_base(settings.web_url, settings.web_host, settings.web_port),
        who,
        target=target,
    )
    view = discord.ui.View()
    view.add_item(discord.ui.Button(label=label, url=url))
    minutes = int(LINK_TTL.total_seconds() // 60)
    rights = " with moderator rights" if who.moderator else ""
    await interaction.response.send_message(
        f"Your own sign-in link{rights}: it works once, within {minutes} minutes. Don't share it.",
        view=view,
        ephemeral=True,
    )
