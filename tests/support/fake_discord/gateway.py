"""The fake Discord's gateway: the websocket a client identifies on and receives events from."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from tests.support.fake_discord.state import FakeDiscordState, Session

log = logging.getLogger(__name__)

OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_PRESENCE, OP_RESUME = 0, 1, 2, 3, 6
OP_REQUEST_MEMBERS, OP_INVALID_SESSION, OP_HELLO, OP_HEARTBEAT_ACK = 8, 9, 10, 11


class GatewayMixin(FakeDiscordState):
    """The gateway websocket (HELLO, IDENTIFY, READY, heartbeats) and dispatching events down it."""

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

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH event down every live gateway session."""
        if not self.sessions:
            raise AssertionError(f"no gateway session to dispatch {event} to; is the client connected?")
        for session in list(self.sessions):
            await self._send_dispatch(session, event, data)
