"""Every test runs on the CPU and offline.

The environment is set before anything imports torch or huggingface_hub, and spawned engine
processes inherit it. A socket guard refuses connections to anything but loopback, so a test that
would reach the network fails loudly instead of hanging or downloading.
"""

from __future__ import annotations

import ipaddress
import os
import socket

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
