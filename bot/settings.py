"""Every operator setting in one place, read from the environment and an optional `.env`.

Settings are validated once, at startup, so a typo fails fast with a message that names the
variable and what it accepts, instead of surfacing later as an odd failure deep inside a job.
The environment wins over `.env` (the usual twelve-factor order: a deploy can override a file).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from dotenv import dotenv_values

from bot.core.limits import Limits
from bot.logs import LOG_FORMATS
from bot.settings_values import (
    DTYPE_ALIASES,
    VERSION_KEY,
    SettingsError,
    read_auto_bool,
    read_batch_jobs,
    read_bool,
    read_choice,
    read_int,
    read_model_config,
    read_optional_count,
    read_optional_int,
    read_optional_positive,
    read_seconds,
    read_versions,
)
from engine.api import COMPILE_MODES, DEFAULT_MODEL, DTYPES, FP8_MODES, EngineConfig
from storage.ownership import DEFAULT_LEASE_S

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
ENGINES = ("local", "inprocess", "ray")
RAY_SETTINGS = (
    "IMAGINE_RAY_ADDRESS",
    "IMAGINE_RAY_REPLICAS",
    "IMAGINE_RAY_MIN_REPLICAS",
    "IMAGINE_RAY_MAX_REPLICAS",
    "IMAGINE_RAY_TARGET_ONGOING_REQUESTS",
    "IMAGINE_RAY_GPUS_PER_REPLICA",
    "IMAGINE_RAY_APP",
)
_ENGINE_DEFAULTS = EngineConfig()
_LIMITS = Limits()  # Midjourney's per-user defaults, kept with the dispatcher that applies them
_RAY_ADDRESS = re.compile(r"^(auto|local|(ray://)?[A-Za-z0-9.\-\[\]:]+:\d+)$")
_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:\d+|mps)$")


@dataclass(frozen=True)
class Settings:
    """The validated settings. Build with `Settings.from_env()`; tests may construct it directly."""

    data_dir: Path = Path("data")
    database_url: str | None = None  # None: SQLite in the data directory
    model: str = DEFAULT_MODEL
    device: str = "auto"
    discord_token: str | None = None
    max_running_per_user: int = _LIMITS.max_running_per_user
    max_queued_per_user: int = _LIMITS.max_queued_per_user
    log_level: str = "INFO"
    log_json: bool = False
    inpaint_model: str | None = None
    upscaler_model: str | None = None
    captioner: str | None = None  # IMAGINE_CAPTIONER: a captioning model folder for /describe
    ip_adapter: str | None = None  # IMAGINE_IP_ADAPTER: IP-Adapter weights for --sref / --oref
    engine: str = "local"
    engine_heartbeat_s: float = _ENGINE_DEFAULTS.heartbeat_s
    engine_hang_timeout_s: float = _ENGINE_DEFAULTS.hang_timeout_s
    batch_jobs: int = 0  # 0: auto (4 on a GPU, 1 on a CPU); see EngineConfig.batch_jobs
    ray_address: str | None = None  # None: RAY_ADDRESS, a Ray already running here, or a new local one
    ray_replicas: int = 1
    ray_min_replicas: int | None = None  # with ray_max_replicas: Serve autoscales between the two
    ray_max_replicas: int | None = None
    ray_target_ongoing_requests: float | None = None  # autoscaling: jobs in flight per replica
    ray_gpus_per_replica: float | None = None  # None: 1 on CUDA (or auto with GPUs), else 0
    ray_app: str | None = None  # the Serve application; None: one per model (see ray_app_name)
    metrics_port: int | None = None  # /metrics, /healthz, /readyz; None: no such server
    metrics_host: str = "127.0.0.1"
    web_port: int | None = None  # Imagine Web inside the bot; None: not there (`imagine web` still serves)
    web_host: str = "127.0.0.1"
    web_url: str | None = None  # the public base URL of the web app, for links; None: http://host:port
    model_config: str | None = None
    lora_dir: str | None = None  # IMAGINE_LORA_DIR: LoRA styles (.safetensors) members pick with --lora
    versions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    dev_guild_id: int | None = None
    job_lease_s: float = DEFAULT_LEASE_S  # how long a job stays held without a heartbeat
    allow_second_bot: bool = False  # a second `imagine-bot` on one database starts anyway
    turbo: bool = False  # --turbo and Turbo mode allowed (half the steps, Fast time spent)
    database_wait_s: float = 30.0  # how long a command waits for a database locked by another process
    max_image_decodes: int = 2  # image prompts decoded at once (each may be tens of megapixels)
    # The engine's speed paths (engine/speed.py, the README's "Speed"): all off or automatic here,
    # because each either changes pixels on the CPU or only pays off on a GPU.
    dtype: str = "auto"
    channels_last: bool | None = None  # None: auto (on with CUDA)
    fuse_qkv: bool = False
    compile: str = "off"
    compile_cache_dir: Path | None = None  # None: <data dir>/compile-cache
    cuda_graphs: bool = False
    fp8: str = "off"

    @property
    def web_enabled(self) -> bool:
        """Whether members can reach Imagine Web (a public URL, or the bot serves it itself)."""
        return self.web_url is not None or self.web_port is not None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Read and validate the settings.

        With `environ=None` the process environment is used and `env_file` (when it exists) fills
        in what the environment leaves unset. An explicit `environ` is taken as the whole truth
        (no `.env`), which keeps tests independent of the directory they run in.
        """
        if environ is None:
            values: dict[str, str] = {}
            if env_file is not None and Path(env_file).is_file():
                values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
            values.update(os.environ)
        else:
            values = dict(environ)

        def get(name: str) -> str | None:
            value = values.get(name)
            if value is None:
                return None
            value = value.strip()
            return value or None

        data_dir = Path(get("IMAGINE_DATA_DIR") or "data")
        device = (get("IMAGINE_DEVICE") or "auto").lower()
        if not _DEVICE.match(device):
            raise SettingsError(f"IMAGINE_DEVICE={device!r} is not valid; use auto, cpu, cuda or cuda:N")
        log_level = (get("IMAGINE_LOG_LEVEL") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise SettingsError(
                f"IMAGINE_LOG_LEVEL={log_level!r} is not valid; use one of {', '.join(LOG_LEVELS)}"
            )
        engine = (get("IMAGINE_ENGINE") or "local").lower()
        if engine not in ENGINES:
            raise SettingsError(f"IMAGINE_ENGINE={engine!r} is not valid; use one of {', '.join(ENGINES)}")
        heartbeat_s = read_seconds(get, "IMAGINE_ENGINE_HEARTBEAT_S", _ENGINE_DEFAULTS.heartbeat_s)
        hang_timeout_s = read_seconds(get, "IMAGINE_ENGINE_HANG_TIMEOUT_S", _ENGINE_DEFAULTS.hang_timeout_s)
        if hang_timeout_s <= heartbeat_s:
            raise SettingsError(
                f"IMAGINE_ENGINE_HANG_TIMEOUT_S={hang_timeout_s:g} must be longer than "
                f"IMAGINE_ENGINE_HEARTBEAT_S={heartbeat_s:g}, or a healthy engine would look hung"
            )
        ray_address = get("IMAGINE_RAY_ADDRESS")
        if ray_address is not None and not _RAY_ADDRESS.match(ray_address):
            raise SettingsError(
                f"IMAGINE_RAY_ADDRESS={ray_address!r} is not a Ray address; use auto (the cluster this "
                "machine belongs to), local (a new one here), HOST:PORT or ray://HOST:PORT"
            )
        ray_replicas = read_int(get, "IMAGINE_RAY_REPLICAS", 1, minimum=1)
        ray_min, ray_max = (
            read_optional_count(get, "IMAGINE_RAY_MIN_REPLICAS"),
            read_optional_count(get, "IMAGINE_RAY_MAX_REPLICAS"),
        )
        if ray_min is not None and ray_max is None:
            raise SettingsError(
                "IMAGINE_RAY_MIN_REPLICAS needs IMAGINE_RAY_MAX_REPLICAS: autoscaling runs between the two"
            )
        if ray_max is not None and (ray_max < 1 or (ray_min or 0) > ray_max):
            raise SettingsError(
                f"IMAGINE_RAY_MAX_REPLICAS={ray_max} must be at least 1 and at least "
                f"IMAGINE_RAY_MIN_REPLICAS={ray_min or 0}"
            )
        if ray_max is not None and get("IMAGINE_RAY_REPLICAS"):
            raise SettingsError(
                "IMAGINE_RAY_REPLICAS is a fixed count and IMAGINE_RAY_MAX_REPLICAS turns on autoscaling; "
                "set one of them"
            )
        ray_target = read_optional_positive(get, "IMAGINE_RAY_TARGET_ONGOING_REQUESTS")
        if ray_target is not None and ray_max is None:
            raise SettingsError(
                "IMAGINE_RAY_TARGET_ONGOING_REQUESTS only applies with IMAGINE_RAY_MAX_REPLICAS"
            )
        ray_gpus = read_optional_positive(get, "IMAGINE_RAY_GPUS_PER_REPLICA", zero=True)
        ray_app = get("IMAGINE_RAY_APP")
        if ray_app is not None and not VERSION_KEY.match(ray_app):
            raise SettingsError(
                f"IMAGINE_RAY_APP={ray_app!r} is not valid; use letters, digits, '.', '_' and '-'"
            )
        if engine != "ray":
            # Ray settings without the Ray engine are almost always a forgotten IMAGINE_ENGINE=ray:
            # running on one GPU while the operator expects a cluster is worse than not starting.
            stray = [name for name in RAY_SETTINGS if get(name)]
            if stray:
                raise SettingsError(
                    f"{' and '.join(stray)} only apply to IMAGINE_ENGINE=ray, but IMAGINE_ENGINE is "
                    f"{engine}; set IMAGINE_ENGINE=ray or remove them"
                )
        log_format = (get("IMAGINE_LOG_FORMAT") or "").lower()
        if log_format and log_format not in LOG_FORMATS:
            raise SettingsError(f"IMAGINE_LOG_FORMAT={log_format!r} is not valid; use text or json")
        log_json = log_format == "json" if log_format else read_bool(get, "IMAGINE_LOG_JSON", False)
        metrics_port = read_optional_int(get, "IMAGINE_METRICS_PORT")
        if metrics_port is not None and not 0 <= metrics_port <= 65535:
            raise SettingsError(
                f"IMAGINE_METRICS_PORT={metrics_port} is not a TCP port (1-65535, 0: any free one)"
            )
        web_port = read_optional_int(get, "IMAGINE_WEB_PORT")
        if web_port is not None and not 0 <= web_port <= 65535:
            raise SettingsError(f"IMAGINE_WEB_PORT={web_port} is not a TCP port (1-65535, 0: any free one)")
        web_url = (get("IMAGINE_WEB_URL") or "").strip().rstrip("/") or None
        if web_url is not None and not web_url.startswith(("http://", "https://")):
            raise SettingsError(
                f"IMAGINE_WEB_URL={web_url!r} is not a web address; use e.g. https://imagine.example.org"
            )
        model = get("IMAGINE_MODEL") or DEFAULT_MODEL
        model_config = read_model_config(get("IMAGINE_MODEL_CONFIG"), model)
        compile_mode = read_choice(get, "IMAGINE_COMPILE", COMPILE_MODES, "off")
        cuda_graphs = read_bool(get, "IMAGINE_CUDA_GRAPHS", False)
        if cuda_graphs and compile_mode == "off":
            raise SettingsError(
                "IMAGINE_CUDA_GRAPHS=on needs IMAGINE_COMPILE=regional or full: the graphs are recorded "
                "from the compiled UNet"
            )
        compile_cache = get("IMAGINE_COMPILE_CACHE_DIR")
        database_url = get("IMAGINE_DATABASE_URL")
        if database_url is not None and "://" not in database_url:
            raise SettingsError(
                f"IMAGINE_DATABASE_URL={database_url!r} is not a SQLAlchemy URL "
                "(e.g. sqlite+aiosqlite:///data/imagine.db or postgresql+asyncpg://user@host/db)"
            )
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            model=model,
            device=device,
            discord_token=get("DISCORD_TOKEN"),
            max_running_per_user=read_int(
                get, "IMAGINE_MAX_RUNNING_PER_USER", _LIMITS.max_running_per_user, minimum=1
            ),
            max_queued_per_user=read_int(
                get, "IMAGINE_MAX_QUEUED_PER_USER", _LIMITS.max_queued_per_user, minimum=1
            ),
            log_level=log_level,
            log_json=log_json,
            inpaint_model=get("IMAGINE_INPAINT_MODEL"),
            upscaler_model=get("IMAGINE_UPSCALER_MODEL"),
            captioner=get("IMAGINE_CAPTIONER"),
            ip_adapter=get("IMAGINE_IP_ADAPTER"),
            engine=engine,
            engine_heartbeat_s=heartbeat_s,
            engine_hang_timeout_s=hang_timeout_s,
            batch_jobs=read_batch_jobs(get("IMAGINE_BATCH_JOBS")),
            ray_address=ray_address,
            ray_replicas=ray_replicas,
            ray_min_replicas=ray_min,
            ray_max_replicas=ray_max,
            ray_target_ongoing_requests=ray_target,
            ray_gpus_per_replica=ray_gpus,
            ray_app=ray_app,
            metrics_port=metrics_port,
            metrics_host=get("IMAGINE_METRICS_HOST") or "127.0.0.1",
            web_port=web_port,
            web_host=get("IMAGINE_WEB_HOST") or "127.0.0.1",
            web_url=web_url,
            model_config=model_config,
            lora_dir=(get("IMAGINE_LORA_DIR") or "").strip() or None,
            versions=read_versions(get("IMAGINE_VERSIONS")),
            discord_api_base=get("IMAGINE_DISCORD_API_BASE"),
            discord_gateway_url=get("IMAGINE_DISCORD_GATEWAY_URL"),
            dev_guild_id=read_optional_int(get, "IMAGINE_DEV_GUILD_ID"),
            job_lease_s=read_seconds(get, "IMAGINE_JOB_LEASE_S", DEFAULT_LEASE_S),
            allow_second_bot=read_bool(get, "IMAGINE_ALLOW_SECOND_BOT", False),
            turbo=read_bool(get, "IMAGINE_TURBO", False),
            database_wait_s=read_seconds(get, "IMAGINE_DATABASE_WAIT_S", 30.0),
            max_image_decodes=read_int(get, "IMAGINE_MAX_IMAGE_DECODES", 2, minimum=1),
            dtype=DTYPE_ALIASES.get((get("IMAGINE_DTYPE") or "").lower())
            or read_choice(get, "IMAGINE_DTYPE", DTYPES, "auto"),
            channels_last=read_auto_bool(get, "IMAGINE_CHANNELS_LAST"),
            fuse_qkv=read_bool(get, "IMAGINE_FUSE_QKV", False),
            compile=compile_mode,
            compile_cache_dir=Path(compile_cache).expanduser() if compile_cache else None,
            cuda_graphs=cuda_graphs,
            fp8=read_choice(get, "IMAGINE_FP8", FP8_MODES, "off"),
        )

    def engine_config(self) -> EngineConfig:
        """The engine's configuration derived from these settings."""
        return EngineConfig(
            model=self.model,
            device=self.device,
            inpaint_model=self.inpaint_model,
            upscaler_model=self.upscaler_model,
            captioner=self.captioner,
            ip_adapter=self.ip_adapter,
            model_config=self.model_config,
            lora_dir=self.lora_dir,
            heartbeat_s=self.engine_heartbeat_s,
            hang_timeout_s=self.engine_hang_timeout_s,
            batch_jobs=self.batch_jobs,
            dtype=self.dtype,
            channels_last=self.channels_last,
            fuse_qkv=self.fuse_qkv,
            compile=self.compile,
            # Compiled code outlives the process here, so a restart skips inductor's codegen.
            compile_cache_dir=str(self.compile_cache_dir or self.data_dir / "compile-cache"),
            cuda_graphs=self.cuda_graphs,
            fp8=self.fp8,
        )

    def ray_app_name(self) -> str:
        """The Serve application: IMAGINE_RAY_APP, else one per model, so bots that run different
        models on one cluster each get their own deployment and never share replicas."""
        if self.ray_app:
            return self.ray_app
        slug = re.sub(r"[^A-Za-z0-9]+", "-", Path(self.model).name if "/" in self.model else self.model)
        return f"imagine-{slug.strip('-').lower() or 'engine'}"

    def require_discord_token(self) -> str:
        """The token, or a SettingsError that says how to get one (the bot cannot start without it)."""
        if not self.discord_token:
            raise SettingsError(
                "DISCORD_TOKEN is not set; create a bot in the Discord developer portal and put its "
                "token in the environment or in .env (the `imagine` console needs no token)"
            )
        return self.discord_token
