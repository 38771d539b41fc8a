"""Settings: defaults with nothing set, every variable read, errors that name the variable."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from bot.logs import job_context, remove_logging, setup_logging
from bot.settings import Settings, SettingsError


def test_nothing_set_gives_the_documented_defaults():
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.data_dir == Path("data")
    assert settings.database_url is None
    assert settings.model == "toy"  # the shipped toy model: draws what it is asked, no download
    assert settings.device == "auto"
    assert settings.engine == "local"
    assert (settings.max_running_per_user, settings.max_queued_per_user) == (3, 10)
    assert (settings.log_level, settings.log_json) == ("INFO", False)
    assert settings.discord_token is None and dict(settings.versions) == {}
    assert (settings.ray_address, settings.ray_replicas, settings.model_config) == (None, 1, None)
    config = settings.engine_config()
    assert (config.heartbeat_s, config.hang_timeout_s, config.model_config) == (2.0, 120.0, None)
    assert (config.jobs_per_batch("cuda"), config.jobs_per_batch("cpu")) == (4, 1)  # auto


def test_every_variable_is_read():
    settings = Settings.from_env(
        {
            "IMAGINE_DATA_DIR": "/srv/imagine",
            "IMAGINE_DATABASE_URL": "postgresql+asyncpg://bot@db/imagine",
            "IMAGINE_MODEL": "sdxl-base",
            "IMAGINE_DEVICE": "CUDA:1",
            "DISCORD_TOKEN": "abc.def",
            "IMAGINE_MAX_RUNNING_PER_USER": "2",
            "IMAGINE_MAX_QUEUED_PER_USER": "5",
            "IMAGINE_LOG_LEVEL": "debug",
            "IMAGINE_LOG_JSON": "yes",
            "IMAGINE_INPAINT_MODEL": "/models/inpaint",
            "IMAGINE_UPSCALER_MODEL": "stabilityai/sd-x2-latent-upscaler",
            "IMAGINE_ENGINE": "inprocess",
            "IMAGINE_VERSIONS": "6=sdxl-base, turbo=sdxl-turbo",
            "IMAGINE_DISCORD_API_BASE": "http://127.0.0.1:9999/api/v10",
            "IMAGINE_DISCORD_GATEWAY_URL": "ws://127.0.0.1:9999/gateway",
            "IMAGINE_DEV_GUILD_ID": "1234567890123",
            "IMAGINE_BATCH_JOBS": "8",
        }
    )
    assert settings.data_dir == Path("/srv/imagine")
    assert settings.database_url == "postgresql+asyncpg://bot@db/imagine"
    assert settings.device == "cuda:1"
    assert settings.require_discord_token() == "abc.def"
    assert (settings.max_running_per_user, settings.max_queued_per_user) == (2, 5)
    assert (settings.log_level, settings.log_json) == ("DEBUG", True)
    assert dict(settings.versions) == {"6": "sdxl-base", "turbo": "sdxl-turbo"}
    assert settings.dev_guild_id == 1234567890123
    config = settings.engine_config()
    assert (config.model, config.device, config.inpaint_model) == ("sdxl-base", "cuda:1", "/models/inpaint")
    assert config.upscaler_model == "stabilityai/sd-x2-latent-upscaler"
    assert (config.jobs_per_batch("cuda"), config.jobs_per_batch("cpu")) == (8, 8)


@pytest.mark.parametrize(
    ("name", "value", "after_the_name"),
    [
        ("IMAGINE_DEVICE", "gpu", "='gpu' is not valid; use auto, cpu, cuda or cuda:N"),
        ("IMAGINE_MAX_RUNNING_PER_USER", "three", "='three' is not a whole number"),
        ("IMAGINE_MAX_QUEUED_PER_USER", "0", "=0 is too small"),
        ("IMAGINE_LOG_LEVEL", "loud", "='LOUD' is not valid; use one of DEBUG, INFO"),
        ("IMAGINE_LOG_JSON", "maybe", "='maybe' is not a boolean"),
        ("IMAGINE_ENGINE", "gpu", "='gpu' is not valid; use one of local, inprocess, ray"),
        ("IMAGINE_BATCH_JOBS", "0", "='0' is not valid; use auto or a whole number from 1"),
        ("IMAGINE_BATCH_JOBS", "17", "='17' is not valid; use auto or a whole number from 1"),
        ("IMAGINE_BATCH_JOBS", "many", "='many' is not valid"),
        ("IMAGINE_ENGINE_HEARTBEAT_S", "0", "='0' must be a number of seconds above 0"),
        ("IMAGINE_ENGINE_HEARTBEAT_S", "nan", "='nan' must be a number of seconds"),
        ("IMAGINE_ENGINE_HANG_TIMEOUT_S", "2m", "='2m' is not a number of seconds"),
        ("IMAGINE_ENGINE_HANG_TIMEOUT_S", "1.5", "=1.5 must be longer than IMAGINE_ENGINE_HEARTBEAT_S=2"),
        ("IMAGINE_RAY_REPLICAS", "4", " only apply to IMAGINE_ENGINE=ray, but IMAGINE_ENGINE is local"),
        ("IMAGINE_RAY_ADDRESS", "auto", " only apply to IMAGINE_ENGINE=ray"),
        ("IMAGINE_MODEL_CONFIG", "/models/sd15", " is only used when IMAGINE_MODEL is a single"),
        ("IMAGINE_VERSIONS", "6:sdxl", " has a bad entry '6:sdxl'"),
        ("IMAGINE_VERSIONS", "6=a,6=b", " names version '6' twice"),
        ("IMAGINE_VERSIONS", "Turbo=a,turbo=b", " names version 'turbo' twice"),
        ("IMAGINE_DATABASE_URL", "imagine.db", "='imagine.db' is not a SQLAlchemy URL"),
        ("IMAGINE_DEV_GUILD_ID", "my-guild", "='my-guild' is not a whole number"),
        ("IMAGINE_DTYPE", "fp64", "='fp64' is not valid; use one of auto, float32, bfloat16, float16"),
        ("IMAGINE_COMPILE", "max", "='max' is not valid; use one of off, regional, full"),
        ("IMAGINE_FP8", "e5m2", "='e5m2' is not valid; use one of off, weights, matmul"),
        ("IMAGINE_CHANNELS_LAST", "maybe", "='maybe' is not valid; use auto, on or off"),
        ("IMAGINE_FUSE_QKV", "2", "='2' is not a boolean"),
        ("IMAGINE_CUDA_GRAPHS", "on", "=on needs IMAGINE_COMPILE=regional or full"),
    ],
)
def test_a_bad_value_names_the_setting_and_what_it_accepts(name, value, after_the_name):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({name: value})
    assert str(caught.value).startswith(name + after_the_name)


def test_ray_settings_reach_the_ray_engine_and_engine_timings_reach_the_engine_config():
    settings = Settings.from_env(
        {
            "IMAGINE_ENGINE": "Ray",
            "IMAGINE_RAY_ADDRESS": "ray://head.internal:10001",
            "IMAGINE_RAY_REPLICAS": "4",
            "IMAGINE_ENGINE_HEARTBEAT_S": "0.5",
            "IMAGINE_ENGINE_HANG_TIMEOUT_S": "30",
        }
    )
    assert (settings.engine, settings.ray_address, settings.ray_replicas) == (
        "ray",
        "ray://head.internal:10001",
        4,
    )
    config = settings.engine_config()
    assert (config.heartbeat_s, config.hang_timeout_s) == (0.5, 30.0)


@pytest.mark.parametrize("address", ["auto", "local", "10.0.0.5:6379", "ray://10.0.0.5:10001", "[::1]:6379"])
def test_ray_addresses_ray_understands_are_accepted(address):
    settings = Settings.from_env({"IMAGINE_ENGINE": "ray", "IMAGINE_RAY_ADDRESS": address})
    assert settings.ray_address == address


@pytest.mark.parametrize("address", ["head.internal", "http://10.0.0.5:8265", "auto:1 x"])
def test_a_ray_address_without_a_port_or_with_a_scheme_ray_does_not_take_is_refused(address):
    with pytest.raises(SettingsError, match=r"IMAGINE_RAY_ADDRESS=.* is not a Ray address; use auto"):
        Settings.from_env({"IMAGINE_ENGINE": "ray", "IMAGINE_RAY_ADDRESS": address})


def test_model_config_is_a_folder_used_for_a_single_file_checkpoint(tmp_path):
    configs = tmp_path / "sd15-configs"
    configs.mkdir()
    checkpoint = {"IMAGINE_MODEL": str(tmp_path / "dreamy.safetensors")}
    settings = Settings.from_env({**checkpoint, "IMAGINE_MODEL_CONFIG": str(configs)})
    assert settings.engine_config().model_config == str(configs)
    # A Hub repo id (already in the Hugging Face cache) is taken as it is.
    settings = Settings.from_env({**checkpoint, "IMAGINE_MODEL_CONFIG": "runwayml/stable-diffusion-v1-5"})
    assert settings.engine_config().model_config == "runwayml/stable-diffusion-v1-5"
    (tmp_path / "dreamy.safetensors").write_bytes(b"")
    for not_a_folder in (str(tmp_path / "missing"), str(tmp_path / "dreamy.safetensors"), "./nowhere"):
        with pytest.raises(SettingsError, match=r"IMAGINE_MODEL_CONFIG=.* is not a folder"):
            Settings.from_env({**checkpoint, "IMAGINE_MODEL_CONFIG": not_a_folder})


def test_version_names_are_lower_cased_like_the_prompts_v_value():
    settings = Settings.from_env({"IMAGINE_VERSIONS": "SDXL=sdxl-base,Turbo=sdxl-turbo,6=sd15"})
    assert dict(settings.versions) == {"sdxl": "sdxl-base", "turbo": "sdxl-turbo", "6": "sd15"}


def test_missing_token_says_how_to_get_one():
    with pytest.raises(SettingsError, match="DISCORD_TOKEN is not set; create a bot"):
        Settings.from_env({}).require_discord_token()


def test_dotenv_fills_in_and_the_environment_wins(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "IMAGINE_MODEL=sd15\nIMAGINE_MAX_QUEUED_PER_USER=7\n# a comment\nIMAGINE_LOG_JSON=true\n"
    )
    monkeypatch.setenv("IMAGINE_MODEL", "tiny")
    monkeypatch.delenv("IMAGINE_MAX_QUEUED_PER_USER", raising=False)
    monkeypatch.delenv("IMAGINE_LOG_JSON", raising=False)
    settings = Settings.from_env(env_file=env_file)
    assert settings.model == "tiny"  # the environment wins
    assert settings.max_queued_per_user == 7 and settings.log_json is True


def test_log_lines_carry_the_job_id_and_json_is_one_object_per_line(capsys):

    stream = io.StringIO()
    setup_logging("INFO", json_lines=True, stream=stream)
    log = logging.getLogger("bot.test")
    log.info("outside")
    with job_context("job-123"):
        log.info("inside %s", "a job")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(entry["job_id"], entry["message"]) for entry in lines] == [
        (None, "outside"),
        ("job-123", "inside a job"),
    ]

    stream = io.StringIO()
    setup_logging("INFO", json_lines=False, stream=stream)
    with job_context("job-456"):
        log.info("text line")
    assert "[job job-456] text line" in stream.getvalue()
    remove_logging()  # leave no handler on this test's (soon closed) stream
    log.info("after")
    assert "after" not in stream.getvalue()


def test_ray_scaling_and_status_port_settings():
    settings = Settings.from_env(
        {
            "IMAGINE_ENGINE": "ray",
            "IMAGINE_RAY_MIN_REPLICAS": "1",
            "IMAGINE_RAY_MAX_REPLICAS": "6",
            "IMAGINE_RAY_TARGET_ONGOING_REQUESTS": "3",
            "IMAGINE_RAY_GPUS_PER_REPLICA": "0.5",
            "IMAGINE_MODEL": "stabilityai/sdxl-turbo",
            "IMAGINE_METRICS_PORT": "9464",
        }
    )
    assert (settings.ray_min_replicas, settings.ray_max_replicas) == (1, 6)
    assert (settings.ray_target_ongoing_requests, settings.ray_gpus_per_replica) == (3.0, 0.5)
    assert settings.ray_app_name() == "imagine-sdxl-turbo"  # one Serve application per model
    assert (settings.metrics_port, settings.metrics_host) == (9464, "127.0.0.1")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"IMAGINE_ENGINE": "ray", "IMAGINE_RAY_MIN_REPLICAS": "2"}, "needs IMAGINE_RAY_MAX_REPLICAS"),
        (
            {"IMAGINE_ENGINE": "ray", "IMAGINE_RAY_MIN_REPLICAS": "3", "IMAGINE_RAY_MAX_REPLICAS": "2"},
            "at least",
        ),
        (
            {"IMAGINE_ENGINE": "ray", "IMAGINE_RAY_REPLICAS": "2", "IMAGINE_RAY_MAX_REPLICAS": "4"},
            "set one of them",
        ),
        ({"IMAGINE_ENGINE": "ray", "IMAGINE_RAY_TARGET_ONGOING_REQUESTS": "2"}, "only applies with"),
        ({"IMAGINE_ENGINE": "ray", "IMAGINE_RAY_GPUS_PER_REPLICA": "-1"}, "0 or more"),
        ({"IMAGINE_RAY_MAX_REPLICAS": "4"}, "only apply to IMAGINE_ENGINE=ray"),
        ({"IMAGINE_LOG_FORMAT": "xml"}, "use text or json"),
        ({"IMAGINE_METRICS_PORT": "70000"}, "not a TCP port"),
    ],
)
def test_bad_scaling_and_status_settings_say_what_is_wrong(environ, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(environ)


def test_speed_settings_reach_the_engine_and_compiled_code_is_cached_under_the_data_dir():
    defaults = Settings.from_env({"IMAGINE_DATA_DIR": "/srv/imagine"}).engine_config()
    assert (defaults.dtype, defaults.channels_last, defaults.fuse_qkv) == ("auto", None, False)
    assert (defaults.compile, defaults.cuda_graphs, defaults.fp8) == ("off", False, "off")
    assert defaults.compile_cache_dir == str(Path("/srv/imagine") / "compile-cache")
    config = Settings.from_env(
        {
            "IMAGINE_DTYPE": "BF16",
            "IMAGINE_CHANNELS_LAST": "off",
            "IMAGINE_FUSE_QKV": "on",
            "IMAGINE_COMPILE": "Regional",
            "IMAGINE_CUDA_GRAPHS": "yes",
            "IMAGINE_FP8": "matmul",
            "IMAGINE_COMPILE_CACHE_DIR": "/cache/inductor",
        }
    ).engine_config()
    assert (config.dtype, config.channels_last, config.fuse_qkv) == ("bfloat16", False, True)
    assert (config.compile, config.cuda_graphs, config.fp8) == ("regional", True, "matmul")
    assert config.compile_cache_dir == "/cache/inductor"
