"""Reading one setting's raw text into its value, or a `SettingsError` that names the variable and
what it accepts; `Settings.from_env` (bot/settings.py) is made of these."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off", "")
VERSION_KEY = re.compile(r"^[A-Za-z0-9._-]+$")


class SettingsError(ValueError):
    """A setting has a value we cannot use; the message names the variable and the allowed values."""


N = TypeVar("N", int, float)
D = TypeVar("D", int, float, None)


def read_number(get, name: str, default: D, kind: Callable[[str], N], problem: str) -> N | D:
    """The variable read by `kind` (int or float), `default` when unset, or a SettingsError that
    quotes what it was and says `problem` (what it should be)."""
    raw = get(name)
    if raw is None:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} {problem}") from None


def read_int(get, name: str, default: int, *, minimum: int) -> int:
    value = read_number(get, name, default, int, f"is not a whole number; use an integer >= {minimum}")
    if value < minimum:
        raise SettingsError(f"{name}={value} is too small; use an integer >= {minimum}")
    return value


MAX_BATCH_JOBS = 16


def read_batch_jobs(raw: str | None) -> int:
    """IMAGINE_BATCH_JOBS: `auto` (0) or how many imagine or vary jobs may share one denoising loop."""
    if raw is None or raw.strip().lower() == "auto":
        return 0
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_BATCH_JOBS:
        raise SettingsError(
            f"IMAGINE_BATCH_JOBS={raw!r} is not valid; use auto or a whole number from 1 (no batching) "
            f"to {MAX_BATCH_JOBS}"
        )
    return value


def read_seconds(get, name: str, default: float) -> float:
    value = read_number(get, name, default, float, f"is not a number of seconds, e.g. {default:g}")
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{name}={get(name)!r} must be a number of seconds above 0, e.g. {default:g}")
    return value


def read_model_config(raw: str | None, model: str) -> str | None:
    """The folder (or cached Hub repo id) with the component configs for a single-file checkpoint.

    Only a `.safetensors`/`.ckpt` model uses it, so with any other model it is a mistake worth
    naming; a path that is not a folder would otherwise fail deep inside the engine's load.
    """
    if raw is None:
        return None
    if not model.lower().endswith(CHECKPOINT_SUFFIXES):
        raise SettingsError(
            f"IMAGINE_MODEL_CONFIG is only used when IMAGINE_MODEL is a single .safetensors or .ckpt "
            f"file, but IMAGINE_MODEL is {model!r}; remove IMAGINE_MODEL_CONFIG"
        )
    path = Path(raw).expanduser()
    looks_like_path = raw.startswith((".", "/", "~")) or path.exists()
    if looks_like_path and not path.is_dir():
        raise SettingsError(
            f"IMAGINE_MODEL_CONFIG={raw!r} is not a folder; point it at a diffusers model folder of "
            "the checkpoint's architecture (model_index.json and the component config files)"
        )
    return str(path) if looks_like_path else raw


def read_optional_count(get, name: str) -> int | None:
    raw = get(name)
    return None if raw is None else read_int(get, name, 0, minimum=0)


def read_optional_positive(get, name: str, *, zero: bool = False) -> float | None:
    """A number above 0 (or at least 0 with `zero`), or None when unset."""
    raw = get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        bound = "0 or more" if zero else "above 0"
        raise SettingsError(f"{name}={raw!r} is not valid; use a number {bound}")
    return value


def read_optional_int(get, name: str) -> int | None:
    return read_number(get, name, None, int, "is not a whole number (a Discord id)")


DTYPE_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def read_choice(get, name: str, allowed: tuple[str, ...], default: str) -> str:
    """One of `allowed` (case-insensitive), or `default` when unset."""
    raw = get(name)
    if raw is None:
        return default
    if raw.lower() not in allowed:
        raise SettingsError(f"{name}={raw!r} is not valid; use one of {', '.join(allowed)}")
    return raw.lower()


def read_auto_bool(get, name: str) -> bool | None:
    """`auto` (or unset) is None, which lets the engine pick for its device; else a boolean."""
    raw = get(name)
    if raw is None or raw.lower() == "auto":
        return None
    try:
        return read_bool(get, name, False)
    except SettingsError:
        raise SettingsError(f"{name}={raw!r} is not valid; use auto, on or off") from None


def read_bool(get, name: str, default: bool) -> bool:
    raw = get(name)
    if raw is None:
        return default
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise SettingsError(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off")


def read_versions(raw: str | None) -> Mapping[str, str]:
    """`6=sdxl,Turbo=sdxl-turbo` -> {"6": "sdxl", "turbo": "sdxl-turbo"} (what `--v` picks).

    Names are lower-cased: the prompt parser lower-cases what follows `--v`, so `--v turbo` and
    `--v TURBO` both pick `Turbo`, and `Turbo` and `turbo` together are one name given twice.
    """
    if raw is None:
        return MappingProxyType({})
    versions: dict[str, str] = {}
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, model = item.partition("=")
        key, model = key.strip().lower(), model.strip()
        if not sep or not key or not model or not VERSION_KEY.match(key):
            raise SettingsError(
                f"IMAGINE_VERSIONS has a bad entry {item!r}; use comma-separated VERSION=MODEL pairs, "
                "e.g. 6=sdxl,turbo=sdxl-turbo"
            )
        if key in versions:
            raise SettingsError(f"IMAGINE_VERSIONS names version {key!r} twice")
        versions[key] = model
    return MappingProxyType(versions)
