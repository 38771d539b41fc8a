"""What the core needs from the world, as Protocols: the store, the engine, the clock, the image fetcher.

The core (`bot.core`) is written against these, not against `storage.store.Store` or a Discord
HTTP session, so that every front end (Discord, the console, the web app next) hands it the same
things and a test can hand it a double. `storage.store.Store` satisfies `JobStore` and
`ModerationStore` structurally; `engine.api.EngineClient` is already a Protocol and is named here
so the core's ports are read in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, Unpack

from engine.api import EngineClient, ImageData
from storage.files import ImageFiles, ImageLike
from storage.models import (
    Ban,
    BannedWord,
    FastUsage,
    GuildSettings,
    Job,
    JobStatus,
    MemberSettings,
    Process,
    UserPrefs,
)
from storage.ownership import Claim, Owner
from storage.records import Completion, FastSeconds, JobFields

__all__ = ["Clock", "EngineClient", "ImageFetcher", "JobStore", "ModerationStore"]


class ModerationStore(Protocol):
    """What the submission check reads: bans (expiry honoured) and the banned-word list."""

    async def active_ban(
        self, user_id: int, guild_id: int | None, now: datetime | None = None
    ) -> Ban | None: ...

    async def banned_words(self, guild_id: int | None) -> Sequence[BannedWord]: ...


class JobStore(ModerationStore, Protocol):
    """The job history as the job service, the dispatcher and `Services` use it."""

    @property
    def files(self) -> ImageFiles: ...

    async def close(self) -> None: ...

    async def create_job(self, **fields: Unpack[JobFields]) -> Job: ...

    async def create_jobs(self, specs: Sequence[JobFields]) -> list[Job]: ...

    async def record_answer(self, **fields: Unpack[JobFields]) -> Job: ...

    async def get_job(self, job_id: str) -> Job | None: ...

    async def update_job(self, job_id: str, **fields: Unpack[JobFields]) -> Job: ...

    async def mark_running(self, job_id: str, owner_id: str | None = None) -> Job: ...

    async def complete_job(
        self, job_id: str, images: Sequence[ImageLike], seeds: Sequence[int], **extra: Unpack[Completion]
    ) -> Job: ...

    async def fail_job(
        self, job_id: str, error: str, status: str = JobStatus.FAILED.value, owner_id: str | None = None
    ) -> Job: ...

    async def claim_pending(self, owner: Owner, pick: Callable[[Job], bool] | None = None) -> Claim: ...

    async def claim_job(self, job_id: str, owner: Owner) -> bool: ...

    async def renew_leases(self, owner: Owner, job_ids: Sequence[str]) -> set[str]: ...

    async def release(self, owner: Owner) -> None: ...

    async def register_process(
        self, owner: Owner, role: str, *, exclusive: bool = False
    ) -> list[Process]: ...

    async def guild_settings(self, guild_id: int) -> GuildSettings: ...

    async def user_prefs(self, user_id: int) -> UserPrefs: ...

    async def member_settings(self, user_id: int, guild_id: int | None) -> MemberSettings: ...

    async def prompt_options(self, user_id: int) -> dict[str, str]: ...

    async def fast_usage(self, user_id: int, guild_id: int, period_start: datetime) -> FastUsage: ...

    async def add_fast_usage(
        self, user_id: int, guild_id: int, period_start: datetime, **seconds: Unpack[FastSeconds]
    ) -> FastUsage: ...


class Clock(Protocol):
    """The moderation clock: `now()` in UTC. Replaceable so tests run bans on virtual time."""

    def __call__(self) -> datetime: ...


class ImageFetcher(Protocol):
    """Downloads an image prompt's URL safely (public addresses only, bounded size) and decodes it."""

    async def __call__(self, url: str) -> ImageData: ...
