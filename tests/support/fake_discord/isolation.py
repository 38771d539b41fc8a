"""A guard for the wire tests: discord.py must not still be patched by an earlier test's double."""

from __future__ import annotations

import datetime as datetime_module
import time as time_module

import discord


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
