"""A fake Discord: the REST API and the gateway websocket, on loopback, for wire-level tests.

It speaks just enough of Discord's API v10 for discord.py 2.7 to log in, sync its commands,
receive interactions over a real gateway connection and answer them over real HTTP: the
deferral and other interaction callbacks, webhook follow-ups and edits (multipart uploads
included), channel messages. Everything the client sends is recorded (`requests`, `callbacks`,
`messages`, `files`), and the test drives it: `await fake.slash_command(...)` (or `click`,
`submit_modal`) sends an INTERACTION_CREATE down every live gateway session, and
`await fake.wait_for(...)` waits for the client's answer with a deadline and a clear failure
message.

Payload shapes follow discord.py's own parsers (`discord/state.py`, `gateway.py`,
`interactions.py`, `message.py`, `webhook/async_.py`), not a recording of real traffic, and are
limited to one guild with one text channel and any number of members.

Point a client at it with `Route.BASE = fake.api_base` and
`DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)` (the bot does this from
`IMAGINE_DISCORD_API_BASE` / `IMAGINE_DISCORD_GATEWAY_URL`).

The modules: `server` (`FakeDiscord`: start, stop, waiting, driving the client, queries) combines
`gateway` (the websocket) and `rest` (the REST routes, messages and attachments) over `state`
(ids, guild, recordings); `payloads` holds the payload shapes and pure helpers, and `isolation`
the check that no earlier test left discord.py patched.
"""

from tests.support.fake_discord.isolation import assert_unpatched_discord
from tests.support.fake_discord.payloads import (
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_DEFERRED_UPDATE,
    CALLBACK_MESSAGE,
    CALLBACK_MODAL,
    CALLBACK_UPDATE,
    EPHEMERAL,
    button_id,
    button_labels,
    buttons,
)
from tests.support.fake_discord.server import FakeDiscord, FakeDiscordTimeout
from tests.support.fake_discord.state import Callback, Recorded, Session

__all__ = [
    "CALLBACK_DEFERRED_MESSAGE",
    "CALLBACK_DEFERRED_UPDATE",
    "CALLBACK_MESSAGE",
    "CALLBACK_MODAL",
    "CALLBACK_UPDATE",
    "EPHEMERAL",
    "Callback",
    "FakeDiscord",
    "FakeDiscordTimeout",
    "Recorded",
    "Session",
    "assert_unpatched_discord",
    "button_id",
    "button_labels",
    "buttons",
]
