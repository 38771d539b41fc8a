"""Every test runs on the CPU and offline; a plain `python -m pytest` runs the fast lane.

The environment is set before anything imports torch or huggingface_hub, and spawned engine
processes inherit it. A socket guard refuses connections to anything but loopback, so a test that
would reach the network fails loudly instead of hanging or downloading.

The lanes: `python -m pytest` with no test named and no `-m` runs the fast lane (the core, both
front ends, storage; no `slow` test, nothing under tests/engine or tests/scaleout), what a
developer runs in under two minutes. `IMAGINE_FULL_TESTS=1` (what `.ci/run` sets) runs the full
lane, everything; naming tests or giving `-m` runs exactly what was asked.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import pytest

os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["DIFFUSERS_OFFLINE"] = "1"
os.environ["IMAGINE_DEVICE"] = "cpu"
os.environ.setdefault("IMAGINE_MODEL", "tiny")
os.environ.pop("DISCORD_TOKEN", None)

_real_connect = socket.socket.connect


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(address):
        raise ConnectionRefusedError(f"tests are offline: refused connection to {address!r}")
    return _real_connect(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]


# The packages that run real diffusers pipelines or a Ray cluster: the full lane only.
_FULL_LANE_ONLY = tuple(Path(__file__).parent / name for name in ("engine", "scaleout"))


def _fast_lane(config: pytest.Config) -> bool:
    """True for a plain run: no tests named, no `-m`, and `IMAGINE_FULL_TESTS` not set."""
    if os.environ.get("IMAGINE_FULL_TESTS", "") not in ("", "0"):
        return False
    return config.args_source is pytest.Config.ArgsSource.TESTPATHS and not config.option.markexpr


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    # Not even collected in the fast lane: collecting them imports torch and diffusers.
    if _fast_lane(config) and collection_path in _FULL_LANE_ONLY:
        return True
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _fast_lane(config):
        return
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if item.get_closest_marker("slow") is None]
