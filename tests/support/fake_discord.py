"""A fake Discord: the REST API and the gateway websocket, on loopback, for wire-level tests.

It speaks just enough of Discord's API v10 for discord.py 2.7 to log in, sync its commands,
receive interactions over a real gateway connection and answer them over real HTTP: the
deferral and other interaction callbacks, webhook follow-ups and edits (multipart uploads
included), channel messages. Everything the client sends is recorded (`requests`, `callbacks`,
`messages`, `files`), and the test drives it: `await fake.dispatch_interaction(...)` sends an
INTERACTION_CREATE down every live gateway session, and `await fake.wait_for(...)` waits for
the client's answer with a deadline and a clear failure message.

Payload shapes follow discord.py's own parsers (`discord/state.py`, `gateway.py`,
`interactions.py`, `message.py`, `webhook/async_.py`), not a recording of real traffic, and are
limited to one guild with one text channel and any number of members.

Point a client at it with `Route.BASE = fake.api_base` and
`DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)` (the bot does this from
`IMAGINE_DISCORD_API_BASE` / `IMAGINE_DISCORD_GATEWAY_URL`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as datetime_module
import io
import itertools
import json
import logging
import time
import time as time_module
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord
from aiohttp import WSMsgType, web
from PIL import Image, UnidentifiedImageError

from tests.support.web import serve

log = logging.getLogger(__name__)

DISCORD_EPOCH_MS = 1420070400000
OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE, OP_RESUME = 0, 1, 2, 3, 6
OP_REQUEST_MEMBERS, OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 8, 9, 10, 11

# Interaction callback types (what the client answers an interaction with).
CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE = 4, 5
CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE, CALLBACK_MODAL = 6, 7, 9


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py parses a body only when the content type is exactly "application/json" (no
    # charset), as Discord sends it.
    return web.Response(
        body=json.dumps(data).encode(), status=status, headers={"Content-Type": "application/json"}
    )


class FakeDiscordTimeout(AssertionError):
    """A wait on the fake Discord ran past its deadline; the message says what never came."""


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


class FakeDiscord:
    """The server and its recordings. Use as `async with FakeDiscord() as fake:`."""

    def __init__(self, *, token: str = "fake-token", heartbeat_interval_ms: int = 41250) -> None:
        self._ids = itertools.count(1)
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.token = token  # the bot token every request and IDENTIFY must carry
        self.application_id = self.snowflake()
        self.bot_user = self._user(self.application_id, "Imagine", bot=True)
        self.owner = self._user(self.snowflake(), "operator")
        self.guild_id = self.snowflake()
        self.channel_id = self.snowflake()
        self.member = self._user(self.snowflake(), "member")  # who sends the interactions
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

    # --- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._record_middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/", self._gateway)
        api = "/api/v10"
        routes = [
            ("GET", "/users/@me", self._get_me),
            ("GET", "/gateway", self._get_gateway),
            ("GET", "/gateway/bot", self._get_gateway),
            ("GET", "/oauth2/applications/@me", self._get_application),
            ("GET", "/applications/{app_id}/commands", self._get_commands),
            ("PUT", "/applications/{app_id}/commands", self._put_commands),
            ("GET", "/applications/{app_id}/guilds/{guild_id}/commands", self._get_commands),
            ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands),
            ("POST", "/interactions/{interaction_id}/{token}/callback", self._callback),
            ("POST", "/webhooks/{app_id}/{token}", self._webhook_send),
            ("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", self._message_get),
            ("PATCH", "/webhooks/{app_id}/{token}/messages/{message_id}", self._webhook_edit),
            ("DELETE", "/webhooks/{app_id}/{token}/messages/{message_id}", self._message_delete),
            ("POST", "/channels/{channel_id}/messages", self._channel_send),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._message_get),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._channel_edit),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._message_delete),
            ("GET", "/channels/{channel_id}", self._get_channel),
            ("POST", "/channels/{channel_id}/typing", self._no_content),
            ("GET", "/guilds/{guild_id}", self._get_guild),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, api + path, handler)
        app.router.add_get("/attachments/{attachment_id}/{filename}", self._attachment)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._serving = contextlib.AsyncExitStack()
        self.port = await self._serving.enter_async_context(serve(app))

    async def stop(self) -> None:
        for ack in list(self._acks):
            ack.cancel()
        for session in list(self.sessions):
            await session.ws.close()
        if self._serving is not None:
            await self._serving.aclose()
            self._serving = None

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

    # --- ids, users, guild ---------------------------------------------------------------------

    def snowflake(self) -> int:
        """A fresh, increasing snowflake whose timestamp is now (discord.py derives dates from it)."""
        return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF)

    @staticmethod
    def _user(user_id: int, name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": str(user_id),
            "username": name,
            "global_name": name,
            "discriminator": "0",
            "avatar": None,
            "bot": bot,
            "flags": 0,
            "public_flags": 0,
        }

    def _member(self, user: dict[str, Any]) -> dict[str, Any]:
        return {
            "user": user,
            "nick": None,
            "roles": [],
            "joined_at": _iso(datetime.now(UTC)),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "permissions": str((1 << 41) - 1),  # everything but administrator
        }

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
            "members": [self._member(self.bot_user)],
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

    # --- waiting -------------------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], *, timeout: float, what: str) -> Any:
        """Wait until `predicate()` returns something truthy and return it.

        Fails with `FakeDiscordTimeout` naming `what` and listing the client's recent requests,
        so a hang becomes a readable failure.
        """
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    recent = "\n  ".join(f"{r.method} {r.path}" for r in self.requests[-15:]) or "(none)"
                    raise FakeDiscordTimeout(
                        f"timed out after {timeout:g} s waiting for {what}; the client's last requests:\n  "
                        f"{recent}\nunknown routes used: {self.unhandled or 'none'}"
                    )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.5))

    # --- driving the client --------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH event down every live gateway session."""
        if not self.sessions:
            raise AssertionError(f"no gateway session to dispatch {event} to; is the client connected?")
        for session in list(self.sessions):
            await self._send_dispatch(session, event, data)

    def _base_interaction(self, kind: int, user: dict[str, Any] | None) -> dict[str, Any]:
        interaction_id = self.snowflake()
        token = f"interaction-token-{interaction_id}"
        payload = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "token": token,
            "version": 1,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": str(self.channel_id),
            "channel": self.channel(),
            "member": self._member(user or self.member),
            "app_permissions": str((1 << 41) - 1),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        self._interactions[token] = payload
        return payload

    async def slash_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: dict[str, Any] | None = None,
        attachments: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> dict[str, Any]:
        """Dispatch a chat-input command; string/int/bool options by name, attachments by option name.

        `attachments` maps an option name to (filename, bytes, content type); the bytes are served
        by this fake at the attachment's URL, like Discord's CDN.
        """
        command = self._find_command(name)
        option_list: list[dict[str, Any]] = []
        for option_name, value in (options or {}).items():
            kind = (
                4
                if isinstance(value, int) and not isinstance(value, bool)
                else 5
                if isinstance(value, bool)
                else 3
            )
            option_list.append({"name": option_name, "type": kind, "value": value})
        resolved: dict[str, Any] = {}
        for option_name, (filename, data, content_type) in (attachments or {}).items():
            attachment = self._store_attachment(filename, data, content_type)
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
            option_list.append({"name": option_name, "type": 11, "value": attachment["id"]})
        payload = self._base_interaction(2, user)
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": option_list}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        if resolved:
            data["resolved"] = resolved
        payload["data"] = data
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    async def click(
        self, message_id: int, custom_id: str, *, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Dispatch a button click on a recorded message (the custom_id must be one of its buttons)."""
        message = self.messages.get(message_id)
        if message is None:
            raise AssertionError(f"no message {message_id} was ever sent; cannot click on it")
        if custom_id not in [button.get("custom_id") for button in buttons(message)]:
            raise AssertionError(f"message {message_id} has no button {custom_id!r}")
        payload = self._base_interaction(3, user)
        payload["message"] = self._public(message)
        payload["data"] = {"custom_id": custom_id, "component_type": 2}
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    async def submit_modal(
        self, custom_id: str, values: dict[str, str], *, user: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Dispatch a modal submission: text inputs by their custom_id."""
        payload = self._base_interaction(5, user)
        payload["data"] = {
            "custom_id": custom_id,
            "components": [
                {"type": 1, "components": [{"type": 4, "custom_id": key, "value": value}]}
                for key, value in values.items()
            ],
        }
        await self.dispatch("INTERACTION_CREATE", payload)
        return payload

    def _find_command(self, name: str) -> dict[str, Any]:
        for command in itertools.chain(*self.guild_commands.values(), self.global_commands):
            if command["name"] == name:
                return command
        # Not synced (yet): Discord would not show it, but discord.py dispatches by name anyway.
        return {"id": str(self.snowflake()), "name": name}

    # --- queries for tests ---------------------------------------------------------------------

    def callbacks_for(self, interaction: dict[str, Any]) -> list[Callback]:
        return [c for c in self.callbacks if c.interaction_id == int(interaction["id"])]

    def original_message(self, interaction: dict[str, Any]) -> dict[str, Any] | None:
        message_id = self._original.get(interaction["token"])
        return self.messages.get(message_id) if message_id is not None else None

    def messages_for(self, interaction: dict[str, Any]) -> list[dict[str, Any]]:
        """The messages made by answering `interaction`: its original response, then follow-ups."""
        return [m for m in self.messages.values() if m.get("_token") == interaction["token"]]

    def attachment_bytes(self, message: dict[str, Any]) -> list[bytes]:
        return [self.files[int(a["id"])] for a in message.get("attachments", [])]

    # --- gateway -------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        session: Session | None = None
        await ws.send_json({"op": OP_HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}})
        try:
            async for message in ws:
                if message.type is not WSMsgType.TEXT:
                    continue
                payload = json.loads(message.data)
                op, data = payload.get("op"), payload.get("d")
                if op == OP_HEARTBEAT:
                    ack = asyncio.create_task(self._ack(ws))
                    self._acks.add(ack)
                    ack.add_done_callback(self._acks.discard)
                elif op == OP_IDENTIFY:
                    session = await self._identify(ws, data)
                elif op == OP_RESUME:
                    session = await self._resume(ws, data)
                elif op == OP_REQUEST_MEMBERS and session is not None:
                    chunk = {
                        "guild_id": data["guild_id"],
                        "members": [],
                        "chunk_index": 0,
                        "chunk_count": 1,
                        "nonce": data.get("nonce"),
                    }
                    await self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)
                elif op == OP_PRESENCE:
                    pass
                else:
                    log.debug("fake gateway ignored op %s", op)
        finally:
            if session is not None and session in self.sessions:
                self.sessions.remove(session)
            await self._notify()
        return ws

    async def _ack(self, ws: web.WebSocketResponse) -> None:
        # A little network latency, as from the real gateway. discord.py's heartbeat thread records
        # the send time only after the send returns; an instant ACK can be read before that and be
        # reported as a heartbeat interval of lag ("Can't keep up ... 41.3s behind").
        await asyncio.sleep(0.05)
        with contextlib.suppress(ConnectionError):
            if not ws.closed:
                await ws.send_json({"op": OP_HEARTBEAT_ACK})

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        if not self._check_token(data.get("token")):
            await ws.close(code=4004, message=b"Authentication failed.")
            return None
        session = Session(session_id=f"session-{self.snowflake()}", ws=ws, intents=data.get("intents", 0))
        ready = {
            "v": 10,
            "user": self.bot_user,
            "guilds": [{"id": str(self.guild_id), "unavailable": True}],
            "session_id": session.session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        await self._send_dispatch(session, "READY", ready)
        await self._send_dispatch(session, "GUILD_CREATE", self.guild())
        self.identifies += 1
        self.sessions.append(session)
        await self._notify()
        return session

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        # Sessions do not survive their connection here: ask for a fresh IDENTIFY, which is what
        # Discord does when a session has expired.
        await ws.send_json({"op": OP_INVALID_SESSION, "d": False})
        return None

    async def _send_dispatch(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.sequence += 1
        await session.ws.send_json({"op": OP_DISPATCH, "t": event, "s": session.sequence, "d": data})

    # --- REST: plumbing ------------------------------------------------------------------------

    def _check_token(self, token: str | None) -> bool:
        return token is not None and token.removeprefix("Bot ") == self.token

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler):
        if request.path == "/" or request.path.startswith("/attachments/"):
            return await handler(request)
        recorded = Recorded(request.method, request.path, dict(request.query))
        request[RECORDED] = recorded
        uses_token = "/webhooks/" in request.path or "/interactions/" in request.path
        if not uses_token and not self._check_token(request.headers.get("Authorization")):
            return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        if request.content_type == "application/json" and request.can_read_body:
            recorded.json = await request.json()
        elif request.content_type.startswith("multipart/"):
            recorded.json, recorded.files = await _read_multipart(request)
        self.requests.append(recorded)
        try:
            return await handler(request)
        finally:
            await self._notify()

    async def _unknown(self, request: web.Request) -> web.Response:
        self.unhandled.append(f"{request.method} {request.path}")
        log.warning("fake Discord has no route for %s %s", request.method, request.path)
        return _json({"message": "404: Not Found (fake Discord)", "code": 0}, status=404)

    @staticmethod
    async def _no_content(request: web.Request) -> web.Response:
        return web.Response(status=204)

    # --- REST: identity and commands -----------------------------------------------------------

    async def _get_me(self, request: web.Request) -> web.Response:
        return _json({**self.bot_user, "verified": True, "mfa_enabled": False})

    async def _get_gateway(self, request: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})

    async def _get_application(self, request: web.Request) -> web.Response:
        return _json(
            {
                "id": str(self.application_id),
                "name": "Imagine",
                "description": "",
                "icon": None,
                "bot_public": False,
                "bot_require_code_grant": False,
                "owner": self.owner,
                "verify_key": "0" * 64,
                "flags": 0,
                "team": None,
                "summary": "",
            }
        )

    def _command_list(self, request: web.Request) -> list[dict[str, Any]]:
        guild_id = request.match_info.get("guild_id")
        if guild_id is None:
            return self.global_commands
        return self.guild_commands.setdefault(int(guild_id), [])

    async def _get_commands(self, request: web.Request) -> web.Response:
        return _json(self._command_list(request))

    async def _put_commands(self, request: web.Request) -> web.Response:
        body = request[RECORDED].json or []
        guild_id = request.match_info.get("guild_id")
        commands = []
        for command in body:
            stored = {
                "type": 1,
                "options": [],
                "default_member_permissions": None,
                "nsfw": False,
                **command,
                "id": str(self.snowflake()),
                "application_id": str(self.application_id),
                "version": str(self.snowflake()),
            }
            stored.setdefault("description", "")
            if guild_id is not None:
                stored["guild_id"] = guild_id
            commands.append(stored)
        target = self._command_list(request)
        target[:] = commands
        return _json(commands)

    async def _get_channel(self, request: web.Request) -> web.Response:
        if int(request.match_info["channel_id"]) != self.channel_id:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        return _json(self.channel())

    async def _get_guild(self, request: web.Request) -> web.Response:
        if int(request.match_info["guild_id"]) != self.guild_id:
            return _json({"message": "Unknown Guild", "code": 10004}, status=404)
        return _json(self.guild())

    # --- REST: messages ------------------------------------------------------------------------

    def _store_attachment(self, filename: str, data: bytes, content_type: str | None) -> dict[str, Any]:
        attachment_id = self.snowflake()
        self.files[attachment_id] = data
        attachment: dict[str, Any] = {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": f"{self.base_url}/attachments/{attachment_id}/{filename}",
            "proxy_url": f"{self.base_url}/attachments/{attachment_id}/{filename}",
            "content_type": content_type or _guess_type(filename),
        }
        size = _image_size(data)
        if size is not None:
            attachment["width"], attachment["height"] = size
        return attachment

    def _attachments(
        self, body: dict[str, Any], files: list[tuple[str, bytes]], existing: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The message's attachments after a create or edit: kept ones by id, uploads by index."""
        listed = body.get("attachments")
        if listed is None:
            kept = existing if "attachments" not in body else []
            return kept + [self._store_attachment(name, data, None) for name, data in files]
        by_id = {a["id"]: a for a in existing}
        result = []
        for entry in listed:
            key = str(entry.get("id"))
            if key in by_id:
                result.append(by_id[key])
            elif key.isdigit() and int(key) < len(files):
                name, data = files[int(key)]
                result.append(self._store_attachment(entry.get("filename") or name, data, None))
        return result

    def _new_message(
        self,
        body: dict[str, Any],
        files: list[tuple[str, bytes]],
        *,
        token: str | None = None,
        webhook: bool = False,
    ) -> dict[str, Any]:
        message_id = self.snowflake()
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(self.channel_id),
            "guild_id": str(self.guild_id),
            "type": 0,
            "author": self.bot_user,
            "content": body.get("content") or "",
            "timestamp": _iso(datetime.now(UTC)),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "embeds": body.get("embeds") or [],
            "components": body.get("components") or [],
            "attachments": self._attachments(body, files, []),
            "pinned": False,
            "flags": body.get("flags", 0) or 0,
        }
        if webhook:
            message["webhook_id"] = str(self.application_id)
            message["application_id"] = str(self.application_id)
        reference = body.get("message_reference")
        if reference:
            message["type"] = 19  # reply
            message["message_reference"] = {
                "message_id": str(reference.get("message_id")),
                "channel_id": str(reference.get("channel_id") or self.channel_id),
                "guild_id": str(self.guild_id),
            }
            parent = self.messages.get(int(reference["message_id"]))
            if parent is not None:
                message["referenced_message"] = {k: v for k, v in parent.items() if k != "referenced_message"}
        if token is not None:
            message["_token"] = token  # which interaction made it (a test-side bookkeeping key)
        self.messages[message_id] = message
        return message

    def _edit_message(
        self, message: dict[str, Any], body: dict[str, Any], files: list[tuple[str, bytes]]
    ) -> None:
        for key in ("content", "embeds", "components", "flags"):
            if key in body:
                message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        if "attachments" in body or files:
            message["attachments"] = self._attachments(body, files, message["attachments"])
        message["edited_timestamp"] = _iso(datetime.now(UTC))

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in message.items() if not k.startswith("_")}

    def _message_from(self, request: web.Request) -> dict[str, Any] | None:
        token = request.match_info.get("token")
        raw = request.match_info["message_id"]
        if raw == "@original":
            message_id = self._original.get(token or "")
            return self.messages.get(message_id) if message_id is not None else None
        message = self.messages.get(int(raw))
        if message is not None and token is not None and message.get("_token") != token:
            return None
        return message

    async def _callback(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        interaction = self._interactions.get(token)
        if interaction is None or interaction["id"] != request.match_info["interaction_id"]:
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        if any(c.interaction_id == int(interaction["id"]) for c in self.callbacks):
            return _json({"message": "Interaction has already been acknowledged.", "code": 40060}, status=400)
        recorded: Recorded = request[RECORDED]
        body = recorded.json or {}
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        self.callbacks.append(Callback(int(interaction["id"]), kind, data, recorded.files))
        message: dict[str, Any] | None = None
        if kind in (CALLBACK_MESSAGE, CALLBACK_DEFERRED_MESSAGE):
            message = self._new_message(
                data if kind == CALLBACK_MESSAGE else {"flags": data.get("flags", 0)},
                recorded.files,
                token=token,
                webhook=True,
            )
            if kind == CALLBACK_DEFERRED_MESSAGE:
                message["flags"] = (message["flags"] or 0) | 128  # "loading": the bot is thinking
            message["interaction_metadata"] = {
                "id": interaction["id"],
                "type": interaction["type"],
                "user": interaction["member"]["user"],
                "authorizing_integration_owners": {},
            }
            self._original[token] = int(message["id"])
        elif kind in (CALLBACK_DEFERRED_UPDATE, CALLBACK_UPDATE) and "message" in interaction:
            message = self.messages[int(interaction["message"]["id"])]
            self._original[token] = int(message["id"])
            if kind == CALLBACK_UPDATE:
                self._edit_message(message, data, recorded.files)
        response: dict[str, Any] = {
            "interaction": {
                "id": interaction["id"],
                "type": interaction["type"],
                "response_message_loading": kind == CALLBACK_DEFERRED_MESSAGE,
                "response_message_ephemeral": bool((data.get("flags") or 0) & 64),
            }
        }
        if message is not None:
            response["interaction"]["response_message_id"] = message["id"]
            response["resource"] = {"type": kind, "message": self._public(message)}
        return _json(response)

    async def _webhook_send(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        if token not in self._interactions:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        recorded: Recorded = request[RECORDED]
        message = self._new_message(recorded.json or {}, recorded.files, token=token, webhook=True)
        if request.query.get("wait") in ("1", "true", "True"):
            return _json(self._public(message))
        return web.Response(status=204)

    async def _message_get(self, request: web.Request) -> web.Response:
        """GET of a message, by channel or by interaction webhook."""
        message = self._message_from(request)
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        return _json(self._public(message))

    async def _webhook_edit(self, request: web.Request) -> web.Response:
        return self._edit(request, webhook=True)

    async def _message_delete(self, request: web.Request) -> web.Response:
        """DELETE of a message, by channel or by interaction webhook."""
        message = self._message_from(request)
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        self.messages.pop(int(message["id"]), None)
        return web.Response(status=204)

    async def _channel_send(self, request: web.Request) -> web.Response:
        if int(request.match_info["channel_id"]) != self.channel_id:
            return _json({"message": "Unknown Channel", "code": 10003}, status=404)
        recorded: Recorded = request[RECORDED]
        message = self._new_message(recorded.json or {}, recorded.files)
        return _json(self._public(message))

    async def _channel_edit(self, request: web.Request) -> web.Response:
        return self._edit(request, webhook=False)

    def _edit(self, request: web.Request, *, webhook: bool) -> web.Response:
        """PATCH of a message, by channel or by interaction webhook."""
        message = self._message_from(request)
        if message is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        recorded: Recorded = request[RECORDED]
        self._edit_message(message, recorded.json or {}, recorded.files)
        if webhook:
            message["flags"] = (message.get("flags") or 0) & ~128  # an edit ends the "thinking" state
        return _json(self._public(message))

    async def _attachment(self, request: web.Request) -> web.Response:
        attachment_id = int(request.match_info["attachment_id"])
        data = self.files.get(attachment_id)
        if data is None:
            raise web.HTTPNotFound()
        self.downloads.append(attachment_id)
        await self._notify()
        return web.Response(body=data, content_type=_guess_type(request.match_info["filename"]))


# --- helpers -------------------------------------------------------------------------------------


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    """Every button of a message, row by row (action rows and components-v2 containers alike)."""
    found: list[dict[str, Any]] = []

    def walk(components: list[dict[str, Any]]) -> None:
        for component in components:
            if component.get("type") == 2:
                found.append(component)
            walk(component.get("components") or [])
            if isinstance(component.get("accessory"), dict):
                walk([component["accessory"]])

    walk(message.get("components") or [])
    return found


def button_labels(message: dict[str, Any]) -> list[str]:
    """What a member sees on each button: its label, or its emoji when it has no label."""
    return [b.get("label") or (b.get("emoji") or {}).get("name", "") for b in buttons(message)]


def button_id(message: dict[str, Any], label: str) -> str:
    """The custom_id of the button a member would click by its label (or emoji)."""
    for button in buttons(message):
        if (button.get("label") or (button.get("emoji") or {}).get("name")) == label:
            return button["custom_id"]
    raise AssertionError(f"no button {label!r} on message {message.get('id')}: {button_labels(message)}")


async def _read_multipart(request: web.Request) -> tuple[Any, list[tuple[str, bytes]]]:
    reader = await request.multipart()
    body: Any = None
    files: list[tuple[int, str, bytes]] = []
    while (part := await reader.next()) is not None:
        data = await part.read()  # type: ignore[union-attr]
        name = part.name or ""  # type: ignore[union-attr]
        if name == "payload_json":
            body = json.loads(bytes(data).decode())
        elif name.startswith("files["):
            index = int(name[len("files[") : -1])
            files.append((index, part.filename or f"file{index}", bytes(data)))  # type: ignore[union-attr]
    return body, [(name, data) for _, name, data in sorted(files)]


def _guess_type(filename: str) -> str:
    lower = filename.lower()
    for suffix, kind in (
        (".png", "image/png"),
        (".jpg", "image/jpeg"),
        (".jpeg", "image/jpeg"),
        (".webp", "image/webp"),
        (".gif", "image/gif"),
    ):
        if lower.endswith(suffix):
            return kind
    return "application/octet-stream"


def _image_size(data: bytes) -> tuple[int, int] | None:

    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except (UnidentifiedImageError, OSError):
        return None


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def assert_unpatched_discord() -> None:
    """Fail clearly when an earlier test left discord.py patched by an unclosed SimCord world.

    SimCord swaps `time.monotonic` and discord.py's `datetime` for a virtual clock while one of its
    environments is open; one that a failing test never closed leaves them swapped, and a real
    client then stalls in ways that look like this test's fault.
    """

    patched = []
    if getattr(time_module.monotonic, "__module__", None) not in (None, "time"):
        patched.append(
            f"time.monotonic is {time_module.monotonic.__module__}.{time_module.monotonic.__name__}"
        )
    if discord.utils.datetime is not datetime_module:
        patched.append("discord.utils.datetime is replaced")
    if patched:
        raise AssertionError(
            "discord.py is still patched by a test double from an earlier test (" + "; ".join(patched) + "); "
            "look for a SimCord test above that failed without closing its environment"
        )
