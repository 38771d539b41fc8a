"""The fake Discord's REST API: its routes, and the messages and attachments they store."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.support.fake_discord.payloads import (
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_DEFERRED_UPDATE,
    CALLBACK_MESSAGE,
    CALLBACK_UPDATE,
    _guess_type,
    _image_size,
    _iso,
    _json,
    _read_multipart,
)
from tests.support.fake_discord.state import RECORDED, Callback, FakeDiscordState, Recorded

log = logging.getLogger(__name__)


class RestMixin(FakeDiscordState):
    """Discord's REST API v10 routes: every request recorded, messages and attachments stored."""

    # --- REST: plumbing ------------------------------------------------------------------------

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
