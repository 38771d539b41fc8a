"""Vary (Region): the canvas editor for an upscaled image, and the form that submits it."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
