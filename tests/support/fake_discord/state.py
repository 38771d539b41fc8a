"""What the fake Discord holds: its ids, its guild and channel, and what the client sent it.

`FakeDiscordState` is the base that the gateway and REST halves (`GatewayMixin`, `RestMixin`)
share and `FakeDiscord` combines.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.support.fake_discord.payloads import DISCORD_EPOCH_MS, _iso, _member, _user


@dataclass
class Recorded:
    """One HTTP request the client made."""

    method: str
    path: str
    query: dict[str, str]
    json: Any = None
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (filename, bytes) in order


@dataclass
class Callback:
    """One interaction callback: how the client first answered an interaction."""

    interaction_id: int
    type: int
    data: dict[str, Any]
    files: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class Session:
    """One identified gateway connection."""

    session_id: str
    ws: web.WebSocketResponse
    sequence: int = 0
    intents: int = 0  # what the client asked for in IDENTIFY


RECORDED = web.RequestKey("recorded", Recorded)


class FakeDiscordState:
    """The fake's ids, guild and recordings, and the plumbing both of its halves use."""

    def __init__(self, *, token: str = "fake-token", heartbeat_interval_ms: int = 41250) -> None:
        self._ids = itertools.count(1)
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.token = token  # the bot token every request and IDENTIFY must carry
        self.application_id = self.snowflake()
        self.bot_user = _user(self.application_id, "Imagine", bot=True)
        self.owner = _user(self.snowflake(), "operator")
        self.guild_id = self.snowflake()
        self.channel_id = self.snowflake()
        self.member = _user(self.snowflake(), "member")  # who sends the interactions
        self.requests: list[Recorded] = []
        self.callbacks: list[Callback] = []
        self.messages: dict[int, dict[str, Any]] = {}  # message id -> payload as Discord would send it
        self.files: dict[int, bytes] = {}  # attachment id -> bytes
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.identifies = 0  # fresh IDENTIFYs seen (a restarted bot identifies again)
        self.unhandled: list[str] = []  # routes the client used that this fake does not know
        self.downloads: list[int] = []  # attachment ids the client fetched from the "CDN"
        self.sessions: list[Session] = []
        self._interactions: dict[str, dict[str, Any]] = {}  # token -> interaction payload
        self._original: dict[str, int] = {}  # token -> id of the interaction's original message
        self._changed = asyncio.Condition()
        self._acks: set[asyncio.Task[None]] = set()  # pending heartbeat ACKs (kept referenced)
        self._serving: contextlib.AsyncExitStack | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """What `discord.http.Route.BASE` must be set to."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """What `DiscordWebSocket.DEFAULT_GATEWAY` must be set to."""
        return f"ws://127.0.0.1:{self.port}/"

    # --- ids, channel, guild -------------------------------------------------------------------

    def snowflake(self) -> int:
        """A fresh, increasing snowflake whose timestamp is now (discord.py derives dates from it)."""
        return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF)

    def channel(self) -> dict[str, Any]:
        return {
            "id": str(self.channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": "imagine",
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": None,
            "rate_limit_per_user": 0,
        }

    def guild(self) -> dict[str, Any]:
        everyone = {
            "id": str(self.guild_id),
            "name": "@everyone",
            "permissions": str((1 << 41) - 1),
            "position": 0,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "flags": 0,
        }
        return {
            "id": str(self.guild_id),
            "name": "Imagine test guild",
            "owner_id": self.owner["id"],
            "unavailable": False,
            "large": False,
            "member_count": 3,
            "roles": [everyone],
            "emojis": [],
            "stickers": [],
            "features": [],
            "channels": [self.channel()],
            "threads": [],
            "members": [_member(self.bot_user)],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "joined_at": _iso(datetime.now(UTC)),
            "preferred_locale": "en-US",
            "premium_tier": 0,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "system_channel_flags": 0,
        }

    # --- plumbing both halves use --------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def _check_token(self, token: str | None) -> bool:
        return token is not None and token.removeprefix("Bot ") == self.token
