"""The fake Discord itself: starting and stopping it, waiting on it, and driving the client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.support.fake_discord.gateway import GatewayMixin
from tests.support.fake_discord.payloads import EPHEMERAL, _member, buttons
from tests.support.fake_discord.rest import RestMixin
from tests.support.fake_discord.state import Callback
from tests.support.web import serve


class FakeDiscordTimeout(AssertionError):
    """A wait on the fake Discord ran past its deadline; the message says what never came."""


class FakeDiscord(GatewayMixin, RestMixin):
    """The server and its recordings. Use as `async with FakeDiscord() as fake:`."""

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

    # --- waiting -------------------------------------------------------------------------------

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
            "member": _member(user or self.member),
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

    async def private_reply(
        self, interaction: dict[str, Any], *, timeout: float, what: str
    ) -> dict[str, Any]:
        """The one message answering `interaction` that only the member who asked sees (a refusal)."""
        [reply] = await self.wait_for(
            lambda: [m for m in self.messages_for(interaction) if m["flags"] & EPHEMERAL],
            timeout=timeout,
            what=what,
        )
        return reply

    def attachment_bytes(self, message: dict[str, Any]) -> list[bytes]:
        return [self.files[int(a["id"])] for a in message.get("attachments", [])]
