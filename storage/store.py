"""`Store`: the job history's one door for the bot, the dispatcher and the console.

Each method is one unit of work: it validates its input first (a refused call changes nothing),
runs in one transaction (retried whole if the database is busy), and returns rows whose attributes
are loaded, usable after the session is gone. Jobs come back with their images.

Moderator actions (hide, ban, unban, banned words, resolving reports) write their audit entry in
the same transaction as the change, so the audit log cannot miss one; pass `audit=False` to a
method when the caller writes its own entry with `audit()`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, Unpack

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.db import Database, default_url
from storage.errors import CorruptDatabaseError, InvalidInputError, JobStateError, NotFoundError
from storage.files import ImageFiles, ImageLike, check_job_id
from storage.models import (
    ANSWER_KINDS,
    GRID_INDEX,
    Job,
    JobStatus,
    utcnow,
)
from storage.ownership import check_owner
from storage.png_text import with_text
from storage.records import Completion, JobFields
from storage.repositories import (
    PENDING,
    ImageRepository,
    JobRepository,
)
from storage.store_history import HistoryMethods
from storage.store_members import MemberMethods
from storage.store_moderation import ModerationMethods
from storage.store_ownership import OwnershipMethods
from storage.store_settings import SettingsMethods
from storage.store_web import WebTokenMethods
from storage.validation import check_job_fields, check_keywords, is_int

log = logging.getLogger(__name__)


def _check_new_job(fields: Mapping[str, Any]) -> None:
    """The checks every new job row passes: the required fields, then each field's own."""
    missing = [name for name in ("user_id", "kind") if fields.get(name) is None]
    if missing:
        raise InvalidInputError(f"a job needs {' and '.join(missing)}")
    check_job_fields(fields, creating=True)


T = TypeVar("T")

MAX_ERROR_CHARS = 4000


def _is_corrupt(exc: DBAPIError) -> bool:
    text = str(exc.orig).lower()
    return "not a database" in text or "malformed" in text or "file is encrypted" in text


class Store(
    HistoryMethods, ModerationMethods, SettingsMethods, OwnershipMethods, WebTokenMethods, MemberMethods
):
    """The job history: rows in the database, pictures under the data directory."""

    def __init__(self, database: Database, files: ImageFiles) -> None:
        self.db = database
        self.files = files

    @classmethod
    async def open(
        cls, url: str | None, data_dir: str | Path, *, migrate: bool = True, wait_s: float = 30.0
    ) -> Store:
        """Connect, bring the schema to the newest migration, sweep stale temp files; ready to use.

        `url` None means the SQLite file in `data_dir`. `wait_s` bounds how long any command
        waits for a database another process keeps locked (then `DatabaseBusyError`). A file that
        is not a database raises `CorruptDatabaseError` naming it; it is never written to.
        """
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        database = Database(url or default_url(data_dir), busy_timeout_s=min(5.0, wait_s), retry_for_s=wait_s)
        try:
            if migrate:
                await database.upgrade()
        except DBAPIError as exc:
            await database.close()
            if database.sqlite and _is_corrupt(exc):
                raise CorruptDatabaseError(
                    f"the database file {make_url(database.url).database} is damaged or is not an SQLite "
                    "database; it was left untouched: restore it from a backup, or move it away to start "
                    "with an empty history"
                ) from exc
            raise
        except BaseException:
            await database.close()
            raise
        files = ImageFiles(data_dir)
        await asyncio.to_thread(files.sweep_temp)
        return cls(database, files)

    async def close(self) -> None:
        await self.db.close()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _write(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await self.db.transaction(work, write=True)

    async def _read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        return await self.db.transaction(work, write=False)

    @staticmethod
    async def _job(session: AsyncSession, job_id: str) -> Job:
        job = await JobRepository(session).get(job_id)
        if job is None:
            raise NotFoundError(f"no job with id {job_id!r}")
        return job

    # ---------------------------------------------------------------------------------------
    # jobs
    # ---------------------------------------------------------------------------------------

    async def create_job(self, **fields: Unpack[JobFields]) -> Job:
        """A new job row, `queued` unless a status is given. `user_id` and `kind` are required."""
        [job] = await self.create_jobs([fields])
        return job

    async def record_answer(self, **fields: Unpack[JobFields]) -> Job:
        """A finished job whose result is text in its params (/shorten, /describe), in one write.

        Such a job has no images and never waits in the queue: the front end asks the engine
        first and records the answer when it has it, so a failed or interrupted question leaves
        no row behind. Only the kinds in `ANSWER_KINDS` may be recorded this way.
        """
        if fields.get("kind") not in ANSWER_KINDS:
            raise InvalidInputError(
                f"only {sorted(ANSWER_KINDS)} jobs are recorded as answers, not {fields.get('kind')!r}"
            )
        if "status" in fields:
            raise InvalidInputError("an answer is always recorded as done; leave the status out")
        _check_new_job(fields)
        parent_id = fields.get("parent_id")
        now = utcnow()

        async def work(session: AsyncSession) -> Job:
            jobs = JobRepository(session)
            if parent_id is not None and not await jobs.exists(parent_id):
                raise NotFoundError(f"parent job {parent_id!r} does not exist")
            done = {"status": JobStatus.DONE.value, "started_at": now, "finished_at": now}
            return await jobs.add(Job(images=[], **fields, **done))

        return await self._write(work)

    async def create_jobs(self, specs: Sequence[JobFields]) -> list[Job]:
        """The rows of one submission (a permutation's prompts, a `--repeat`), in one transaction.

        All or none: a permutation half written by a crash or a full disk would start by surprise
        at the next restart, so a failure on any row leaves none of them behind.
        """
        checked: list[dict[str, Any]] = [dict(spec) for spec in specs]
        for fields in checked:
            _check_new_job(fields)
        parents = {fields["parent_id"] for fields in checked if fields.get("parent_id") is not None}

        async def work(session: AsyncSession) -> list[Job]:
            jobs = JobRepository(session)
            for parent_id in sorted(parents):
                if not await jobs.exists(parent_id):
                    raise NotFoundError(f"parent job {parent_id!r} does not exist")
            # An explicit empty collection: a new job has no images, so no query is needed to know it.
            return [await jobs.add(Job(images=[], **fields)) for fields in checked]

        made = await self._write(work)
        for job in made:
            log.debug("job %s created (%s, user %s)", job.id, job.kind, job.user_id)
        return made

    async def get_job(self, job_id: str) -> Job | None:
        return await self._read(lambda session: JobRepository(session).get(job_id))

    async def update_job(self, job_id: str, **fields: Unpack[JobFields]) -> Job:
        check_job_fields(fields, creating=False)
        parent_id = fields.get("parent_id")

        async def work(session: AsyncSession) -> Job:
            job = await self._job(session, job_id)
            if parent_id is not None:
                if parent_id == job_id:
                    raise InvalidInputError("a job cannot be its own parent")
                if not await JobRepository(session).exists(parent_id):
                    raise NotFoundError(f"parent job {parent_id!r} does not exist")
            for name, value in fields.items():
                setattr(job, name, value)
            return job

        return await self._write(work)

    async def mark_running(self, job_id: str, owner_id: str | None = None) -> Job:
        """The engine took the job: `running`, started now, one more attempt.

        With `owner_id`, refused (`OwnershipConflictError`) when another live process holds it."""

        async def work(session: AsyncSession) -> Job:
            job = await self._job(session, job_id)
            check_owner(job, owner_id, "start")
            if job.status not in PENDING:
                raise JobStateError(f"job {job_id} is {job.status}; only a queued or running job can start")
            job.status = JobStatus.RUNNING.value
            job.started_at = utcnow()
            job.attempts = (job.attempts or 0) + 1
            job.error = None
            return job

        return await self._write(work)

    async def complete_job(
        self, job_id: str, images: Sequence[ImageLike], seeds: Sequence[int], **extra: Unpack[Completion]
    ) -> Job:
        """Store the results and mark the job `done` (refused when another live process holds
        it and `owner_id` is given: that process writes its outcome). `extra`: see `Completion`.

        The files are written (atomically) before the transaction that adds their rows and sets
        `done`, so a crash in between leaves a job that is not done and files nobody points to;
        a job marked done always has its files.
        """
        check_keywords("complete_job", extra, Completion.__optional_keys__)
        grid, timings = extra.get("grid"), extra.get("timings")
        owner_id, texts = extra.get("owner_id"), extra.get("texts")
        if not images:
            raise InvalidInputError("complete_job needs at least one image")
        if len(seeds) != len(images):
            raise InvalidInputError(f"complete_job got {len(images)} image(s) but {len(seeds)} seed(s)")
        if not all(is_int(seed) for seed in seeds):
            raise InvalidInputError(f"seeds must be whole numbers, got {list(seeds)!r}")
        if timings is not None and not isinstance(timings, dict):
            raise InvalidInputError("timings must be a dict of phase name to seconds")
        pictures = [*images, grid] if grid is not None else list(images)
        if texts is not None and len(texts) != len(pictures):
            raise InvalidInputError(f"complete_job got {len(pictures)} picture(s) but {len(texts)} text(s)")
        check_job_id(job_id)

        def check_status(job_id: str, status: str | None) -> None:
            if status is None:
                raise NotFoundError(f"no job with id {job_id!r}")
            if status not in PENDING:
                raise JobStateError(f"job {job_id} is {status}; only a queued or running job can complete")

        # Encoding is pure CPU work on the file workers and touches nothing, so it runs while the
        # job's status is checked; no file is written unless the job may still complete.
        indexes = [*range(len(images)), GRID_INDEX] if grid is not None else list(range(len(images)))
        status, encoded = await asyncio.gather(
            self._read(lambda session: JobRepository(session).status(job_id)),
            asyncio.to_thread(self.files.encode_many, pictures),
            return_exceptions=True,
        )
        if isinstance(status, BaseException):
            raise status
        check_status(job_id, status)  # a missing or finished job is the clearer error of the two
        if isinstance(encoded, BaseException):
            raise encoded
        if texts is not None:
            encoded = [with_text(item, text) for item, text in zip(encoded, texts, strict=True)]
        stored = await asyncio.to_thread(
            self.files.put_many,
            job_id,
            list(zip(indexes, encoded, strict=True)),
            secrets.token_hex(4),  # this completion's own file names (see ImageFiles.relative_path)
        )
        cells = [(item, seed) for item, seed in zip(stored[: len(images)], seeds, strict=True)]
        grid_file = stored[len(images)] if grid is not None else None

        async def work(session: AsyncSession) -> Job:
            jobs = JobRepository(session)
            job = await jobs.get_without_images(job_id, lock=True)
            check_status(job_id, job.status if job else None)  # it may have ended while files were written
            assert job is not None
            check_owner(job, owner_id, "complete")
            await ImageRepository(session).replace_for_job(job, cells, grid_file)
            job.status = JobStatus.DONE.value
            job.finished_at = utcnow()
            job.error = None
            job.width, job.height = cells[0][0].width, cells[0][0].height
            job.timings = {**(job.timings or {}), **(timings or {})}
            return job

        try:
            job = await self._write(work)
        except Exception:
            # The rows were not committed, so nothing points at this completion's files (their
            # names are its own): remove them rather than leave orphans behind.
            await asyncio.to_thread(self.files.remove, [item.path for item in stored])
            raise
        log.info("job %s done: %d image(s)%s", job_id, len(images), " + grid" if grid is not None else "")
        return job

    async def fail_job(
        self, job_id: str, error: str, status: str = JobStatus.FAILED.value, owner_id: str | None = None
    ) -> Job:
        """End a job without images: `failed`, `cancelled` or `blocked`, with the reason (refused
        when another live process holds it and `owner_id` is given)."""
        finals = {s.value for s in JobStatus if s.finished and s is not JobStatus.DONE}
        if status not in finals:
            raise InvalidInputError(f"fail_job status must be one of {sorted(finals)}, got {status!r}")
        error = str(error)[:MAX_ERROR_CHARS]

        async def work(session: AsyncSession) -> Job:
            job = await self._job(session, job_id)
            if job.status == status:
                return job  # already ended this way: a repeated cancel is not an error
            check_owner(job, owner_id, f"end ({status})")
            if job.status not in PENDING:
                raise JobStateError(f"job {job_id} is already {job.status}; it cannot become {status}")
            job.status = status
            job.error = error
            job.finished_at = utcnow()
            return job

        return await self._write(work)

    async def sweep_orphans(self, older_than_s: float = 3600.0) -> int:
        """Delete image files that no row points to (left by a crash before the commit).

        Only files older than `older_than_s`, so a job completing right now keeps its files.
        Walks every image file: run it from maintenance, not on each start.
        """
        referenced = await self._read(lambda session: ImageRepository(session).referenced_paths())
        cutoff = utcnow().timestamp() - older_than_s

        def sweep() -> int:
            stale = [
                path for path, mtime in self.files.stored_files() if mtime < cutoff and path not in referenced
            ]
            return self.files.remove(stale)

        removed = await asyncio.to_thread(sweep)
        if removed:
            log.info("removed %d orphan image file(s)", removed)
        return removed


__all__ = ["Store"]
