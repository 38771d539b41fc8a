"""The `env` fixture of the job-service tests (test_jobs, test_jobs_derive, test_remix, test_fast,
test_prompt_tools, test_region, test_stealth_jobs, test_lora_prompts): the real store, dispatcher
and job service over the stand-in engine (tests/support/job_service.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.job_service import job_service_env


@pytest.fixture
async def env(tmp_path: Path):
    async with job_service_env(tmp_path / "data") as parts:
        yield parts
