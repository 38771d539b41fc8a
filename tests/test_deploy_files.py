"""The compose file: both profiles resolve, and every bot's healthcheck asks /readyz.

`.ci/run` also runs `docker-compose config` and `hadolint`; this keeps the shape checked in the
test suite, with the compose binary when it is installed (the dev extra brings it).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parent.parent / "docker" / "compose.yaml"


def config(*profiles: str) -> dict:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (it comes with the dev extra)")
    args = [binary, "-f", str(COMPOSE)]
    for profile in profiles:
        args += ["--profile", profile]
    result = subprocess.run([*args, "config"], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_the_default_profile_is_the_bot_alone_with_its_readiness_check() -> None:
    services = config()["services"]
    assert list(services) == ["bot"]
    assert "/readyz" in " ".join(services["bot"]["healthcheck"]["test"])
    assert services["bot"]["environment"]["IMAGINE_METRICS_PORT"] == "9464"


def test_the_ray_profile_has_a_head_and_a_bot_on_it() -> None:
    services = config("ray")["services"]
    assert {"ray-head", "bot-ray"} <= set(services)
    bot = services["bot-ray"]
    assert bot["environment"]["IMAGINE_ENGINE"] == "ray"
    assert "ray start --address=ray-head:6379" in " ".join(bot["entrypoint"])
    assert bot["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert "/readyz" in " ".join(bot["healthcheck"]["test"])
