"""The bot side, the engine's client side and the store load without the heavy libraries: torch,
diffusers and ray are imported only where a model runs (the engine process, a Ray replica)."""

from __future__ import annotations

import subprocess
import sys

LIGHT = (
    "bot.__main__",
    "bot.console",
    "bot.discord.app",
    "bot.core.dispatcher",
    "bot.core.jobs",
    "bot.logs",
    "bot.core.services",
    "bot.settings",
    "engine.api",
    "engine.inprocess",
    "engine.local",
    "engine.presets",
    "engine.ray_serve",
    "storage.store",
)
HEAVY = ("torch", "diffusers", "ray")


def test_the_bot_engine_clients_and_store_import_neither_torch_nor_diffusers_nor_ray() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {LIGHT!r}:\n"
        "    importlib.import_module(name)\n"
        f"heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
