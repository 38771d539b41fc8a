"""The application keys the web routes share (kept apart so every module can import them)."""

from __future__ import annotations

from aiohttp import web

from bot.core.services import Services

SERVICES_KEY = web.AppKey("services", Services)
