"""JSON logs: one object per line, and every record about a job names its user, guild and kind."""

from __future__ import annotations

import io
import json
import logging

from bot.logs import job_context, remove_logging, setup_logging
from bot.settings import Settings


def test_every_record_about_a_job_carries_its_user_guild_and_kind() -> None:
    stream = io.StringIO()
    setup_logging("INFO", json_lines=True, stream=stream)
    log = logging.getLogger("bot.test")
    try:
        with job_context("job-1", user_id=7, guild_id=99, kind="upscale"):
            log.info("queued")
            with job_context("job-1"):  # an inner block that knows only the id keeps the tags
                log.info("running")
        # A line the engine process relayed: it carries the job id, no context, and still gets them.
        log.info("from the worker", extra={"job_id": "job-1"})
        log.info("outside")
    finally:
        remove_logging()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    about_job = [(e["message"], e["job_id"], e["user_id"], e["guild_id"], e["kind"]) for e in lines[:3]]
    assert about_job == [
        ("queued", "job-1", 7, 99, "upscale"),
        ("running", "job-1", 7, 99, "upscale"),
        ("from the worker", "job-1", 7, 99, "upscale"),
    ]
    assert lines[3]["job_id"] is None and "user_id" not in lines[3]


def test_log_format_json_or_text() -> None:
    assert Settings.from_env({"IMAGINE_LOG_FORMAT": "json"}).log_json is True
    assert Settings.from_env({"IMAGINE_LOG_FORMAT": "TEXT", "IMAGINE_LOG_JSON": "1"}).log_json is False
    assert Settings.from_env({"IMAGINE_LOG_JSON": "1"}).log_json is True  # the older switch still works
    assert Settings.from_env({}).log_json is False
