"""The latest progress of each running job, for the page's poll (a dispatcher listener)."""

from __future__ import annotations

from aiohttp import web

from bot.core.updates import JobUpdate

MAX_TRACKED = 1000  # a bound on memory if updates ever arrive without a final one


class ProgressBoard:
    def __init__(self) -> None:
        self._latest: dict[str, JobUpdate] = {}

    async def listen(self, update: JobUpdate) -> None:
        if update.final:
            self._latest.pop(update.job_id, None)
            return
        if len(self._latest) >= MAX_TRACKED and update.job_id not in self._latest:
            self._latest.pop(next(iter(self._latest)))
        self._latest[update.job_id] = update

    def latest(self, job_id: str) -> JobUpdate | None:
        return self._latest.get(job_id)


BOARD_KEY = web.AppKey("progress", ProgressBoard)
