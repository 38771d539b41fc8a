"""Signing in to Imagine Web without passwords: one-time links, sessions, CSRF tokens.

Discord's `/web` (and `imagine web-link`) asks for a link for one member in one guild; the link
works once within `LINK_TTL`, and redeeming it opens a session (the browser's cookie) for
`SESSION_TTL`. Only the SHA-256 of each secret is stored. A form's CSRF token is derived from the
session's secret (a keyed hash), so a page that cannot read the cookie cannot forge the token,
and nothing more has to be stored.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from storage.models import WebToken, utcnow

log = logging.getLogger(__name__)

LINK_TTL = timedelta(minutes=15)
SESSION_TTL = timedelta(days=7)
SIGNIN_PATH = "/signin"
DEFAULT_WEB_PORT = 8080  # `imagine web` without IMAGINE_WEB_PORT


def public_base(web_url: str | None, host: str, port: int | None) -> str:
    """Where members reach Imagine Web: IMAGINE_WEB_URL, else the address the server listens on."""
    if web_url:
        return web_url.rstrip("/")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port or DEFAULT_WEB_PORT}"


def region_path(job_id: str) -> str:
    """The Vary (Region) editor of a job (a sign-in link's destination from Discord's button)."""
    return f"/region/{job_id}"


class WebTokenStore(Protocol):
    async def add_web_token(
        self,
        token_hash: str,
        purpose: str,
        *,
        user_id: int,
        user_name: str,
        guild_id: int | None,
        moderator: bool,
        expires_at: datetime,
        target: str | None = None,
    ) -> WebToken: ...

    async def redeem_web_link(self, token_hash: str, now: datetime | None = None) -> WebToken | None: ...

    async def web_session(self, token_hash: str, now: datetime | None = None) -> WebToken | None: ...

    async def end_web_session(self, token_hash: str) -> None: ...


class SignInError(PermissionError):
    """A sign-in link that cannot be used; the message says why in the member's terms."""


@dataclass(frozen=True)
class WebMember:
    """Who a browser acts as: a Discord member in one guild, with or without moderator rights."""

    user_id: int
    user_name: str
    guild_id: int | None
    moderator: bool = False


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(session_secret: str) -> str:
    """The CSRF token of every form in one session (a keyed hash of the session's secret)."""
    return hmac.new(session_secret.encode(), b"imagine-web-csrf", hashlib.sha256).hexdigest()


def csrf_ok(session_secret: str, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(csrf_token(session_secret), str(submitted))


def safe_target(target: str | None) -> str | None:
    """A sign-in link's destination: a path on this site only (no scheme, host or `//`)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target[:200]


async def issue_link(
    store: WebTokenStore,
    base_url: str,
    member: WebMember,
    *,
    target: str | None = None,
    now: datetime | None = None,
) -> str:
    """A one-time sign-in URL for `member`, valid for `LINK_TTL`."""
    secret = secrets.token_urlsafe(32)
    await store.add_web_token(
        token_hash(secret),
        "link",
        user_id=member.user_id,
        user_name=member.user_name,
        guild_id=member.guild_id,
        moderator=member.moderator,
        expires_at=(now or utcnow()) + LINK_TTL,
        target=safe_target(target),
    )
    log.info("web sign-in link issued for user %s in guild %s", member.user_id, member.guild_id)
    return f"{base_url.rstrip('/')}{SIGNIN_PATH}/{secret}"


async def redeem_link(
    store: WebTokenStore, secret: str, *, now: datetime | None = None
) -> tuple[str, WebMember, str | None]:
    """Use a sign-in link: (the new session's secret, the member, where to go). Works once."""
    if not secret or len(secret) > 100:
        raise SignInError("This sign-in link is not valid.")
    row = await store.redeem_web_link(token_hash(secret), now)
    if row is None:
        raise SignInError(
            "This sign-in link is not valid: it was already used or it expired. "
            "Use /web in Discord for a new one."
        )
    member = WebMember(row.user_id, row.user_name, row.guild_id, row.moderator)
    session = secrets.token_urlsafe(32)
    await store.add_web_token(
        token_hash(session),
        "session",
        user_id=member.user_id,
        user_name=member.user_name,
        guild_id=member.guild_id,
        moderator=member.moderator,
        expires_at=(now or utcnow()) + SESSION_TTL,
    )
    return session, member, safe_target(row.target)


async def member_for(store: WebTokenStore, session_secret: str | None) -> WebMember | None:
    """The member a session cookie carries, or None (no cookie, unknown, expired)."""
    if not session_secret or len(session_secret) > 100:
        return None
    row = await store.web_session(token_hash(session_secret))
    if row is None:
        return None
    return WebMember(row.user_id, row.user_name, row.guild_id, row.moderator)


async def sign_out(store: WebTokenStore, session_secret: str) -> None:
    await store.end_web_session(token_hash(session_secret))
