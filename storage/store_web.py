"""The web half of `Store`: one-time sign-in links and browser sessions (`web_tokens`).

A mixin of `Store` (storage/store.py), like `ModerationMethods`. Callers pass the SHA-256 of each
secret, never the secret: the store cannot leak a working link or cookie. Redeeming a link is one
conditional UPDATE, so two browsers racing with the same link cannot both get in.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import InvalidInputError
from storage.models import WebToken, utcnow
from storage.units import UnitsOfWork

T = TypeVar("T")

TOKEN_PURPOSES = ("link", "session")


def _check_hash(token_hash: str) -> None:
    if not (
        isinstance(token_hash, str)
        and len(token_hash) == 64
        and all(c in "0123456789abcdef" for c in token_hash)
    ):
        raise InvalidInputError("a web token is stored by its SHA-256 as 64 lower-case hex digits")


class WebTokenMethods(UnitsOfWork):
    """Store methods for web sign-in; see `Store` for the unit-of-work rules they follow."""

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
    ) -> WebToken:
        """Record a link or a session by the hash of its secret."""
        _check_hash(token_hash)
        if purpose not in TOKEN_PURPOSES:
            raise InvalidInputError(f"web token purpose must be one of {TOKEN_PURPOSES}, got {purpose!r}")
        row = WebToken(
            token_hash=token_hash,
            purpose=purpose,
            user_id=user_id,
            user_name=user_name[:100],
            guild_id=guild_id,
            moderator=bool(moderator),
            target=target,
            expires_at=expires_at,
        )

        async def work(session: AsyncSession) -> WebToken:
            session.add(row)
            await session.flush()
            return row

        return await self._write(work)

    async def redeem_web_link(self, token_hash: str, now: datetime | None = None) -> WebToken | None:
        """The link's row, marked used, if it exists, is unused and has not expired; else None."""
        _check_hash(token_hash)
        moment = now or utcnow()

        async def work(session: AsyncSession) -> WebToken | None:
            result = await session.execute(
                update(WebToken)
                .where(
                    WebToken.token_hash == token_hash,
                    WebToken.purpose == "link",
                    WebToken.used_at.is_(None),
                    WebToken.expires_at > moment,
                )
                .values(used_at=moment)
                .execution_options(synchronize_session=False)
            )
            if getattr(result, "rowcount", 0) != 1:
                return None
            row: WebToken | None = await session.get(WebToken, token_hash)
            return row

        return await self._write(work)

    async def web_session(self, token_hash: str, now: datetime | None = None) -> WebToken | None:
        """The session's row while it has not expired; None for an unknown or expired one."""
        _check_hash(token_hash)
        moment = now or utcnow()

        async def work(session: AsyncSession) -> WebToken | None:
            row = await session.scalar(
                select(WebToken).where(
                    WebToken.token_hash == token_hash,
                    WebToken.purpose == "session",
                    WebToken.expires_at > moment,
                )
            )
            return row

        return await self._read(work)

    async def end_web_session(self, token_hash: str) -> None:
        """Sign out: the session's row goes (and with it every copy of the cookie)."""
        _check_hash(token_hash)

        async def work(session: AsyncSession) -> None:
            await session.execute(delete(WebToken).where(WebToken.token_hash == token_hash))

        await self._write(work)

    async def sweep_web_tokens(self, now: datetime | None = None) -> int:
        """Delete expired links and sessions; returns how many went."""
        moment = now or utcnow()

        async def work(session: AsyncSession) -> int:
            result = await session.execute(delete(WebToken).where(WebToken.expires_at <= moment))
            return int(getattr(result, "rowcount", 0) or 0)

        return await self._write(work)
