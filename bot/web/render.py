"""Pages from the Jinja2 templates beside this module (autoescaped: prompts are user text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from bot.web.access import MEMBER_KEY, form_token

TEMPLATES = Path(__file__).with_name("templates")

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """A full HTML page; the signed-in member and the form token come with every one."""
    signed_in = request.get(MEMBER_KEY)
    context.setdefault("member", signed_in)
    context.setdefault("csrf", form_token(request) if signed_in else "")
    context.setdefault("title", "Imagine")
    html = _env.get_template(template).render(**context)
    return web.Response(text=html, status=status, content_type="text/html")
