"""One `imagine web` process per test module (the `tiny` model), and Chromium to drive it.

The server is the unmodified command, started the way an operator starts it, on a free port with
its own data directory; sign-in links come from `imagine web-link`. The browser is Debian's
`chromium` driven by Playwright's Python API (never `playwright install`). Without chromium the
browser tests skip, unless IMAGINE_REQUIRE_BROWSER=1 (CI), where they fail.
"""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

STARTUP_S = 120.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class WebProcess:
    """`imagine web` in its own process group (its engine child dies with it)."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.env = {
            **os.environ,
            "IMAGINE_MODEL": os.environ.get("IMAGINE_WEB_TEST_MODEL", "tiny"),  # toy: the README screenshots
            "IMAGINE_DEVICE": "cpu",
            "IMAGINE_DATA_DIR": str(data_dir),
            "IMAGINE_WEB_PORT": str(self.port),
            "IMAGINE_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        for name in ("IMAGINE_DATABASE_URL", "IMAGINE_ENGINE", "IMAGINE_WEB_URL", "IMAGINE_WEB_HOST"):
            self.env.pop(name, None)
        self.log_path = data_dir / "web.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "web"],
            cwd=data_dir,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"imagine web exited {self.process.returncode}:\n{self.log()}")
            with suppress(OSError):
                if self.request("GET", "/healthz")[0] == 200:
                    return
            time.sleep(0.3)
        raise TimeoutError(f"imagine web did not answer /healthz in {STARTUP_S:.0f} s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        """A raw request: the path goes on the wire exactly as given (no normalising of `..`)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def link(
        self, user: int, guild: int, *, name: str = "", moderator: bool = False, to: str | None = None
    ) -> str:
        args = [sys.executable, "-m", "bot.cli", "web-link", "--user", str(user), "--guild", str(guild)]
        if name:
            args += ["--name", name]
        if moderator:
            args.append("--moderator")
        if to:
            args += ["--to", to]
        done = subprocess.run(
            args, env=self.env, cwd=self.data_dir, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        self._log.close()


@pytest.fixture(scope="module")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    server = WebProcess(tmp_path_factory.mktemp("web"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = chromium_path()
    if executable is None:
        message = "Debian's chromium is not installed (apt-get install chromium)"
        if os.environ.get("IMAGINE_REQUIRE_BROWSER") == "1":
            pytest.fail(message + "; IMAGINE_REQUIRE_BROWSER=1 needs the browser tests to run")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright  # optional: only the browser tests need it

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()
