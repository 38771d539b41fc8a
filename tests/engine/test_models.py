"""Model loading: the tiny builders, one resident weight set, folders, Hub ids, clear errors."""

from __future__ import annotations

import logging
import re

import pytest
import torch
from diffusers import PNDMScheduler
from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING
from safetensors.torch import save_file

from engine.api import EngineConfig, Failed, Family, PromptSpec
from engine.builders import build_random_weights, build_tiny
from engine.core import EngineCore
from engine.models import ModelLoadError, load_model
from engine.presets import PRESETS, PresetError, get_preset, parse_presets
from engine.quiet import quiet_libraries
from tests.engine.conftest import finish, imagine, pixels, run_events


def test_tiny_builds_the_same_weights_every_time():
    a, b = build_tiny(), build_tiny()
    for (name, x), (_, y) in zip(a.unet.state_dict().items(), b.unet.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    for (name, x), (_, y) in zip(
        a.text_encoder.state_dict().items(), b.text_encoder.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
    assert a.tokenizer("a red lighthouse").input_ids == b.tokenizer("a red lighthouse").input_ids


def test_tiny_tokenizer_pads_and_truncates_like_clip():
    tokenizer = build_tiny().tokenizer
    ids = tokenizer("x " * 200, padding="max_length", max_length=77, truncation=True).input_ids
    assert len(ids) == 77 and ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id


def test_model_info_comes_from_the_preset(core, xl_core):
    assert core.info.family is Family.SD and xl_core.info.family is Family.SDXL
    tiny = get_preset("tiny")
    assert (core.info.native_width, core.info.size_step, core.info.default_steps) == (
        tiny.native_width,
        tiny.size_step,
        tiny.default_steps,
    )
    assert core.info.device == "cpu"
    assert core.model.dtype == torch.float32


def test_presets_carry_family_defaults():
    assert PRESETS["sd15"].native_width == 512 and PRESETS["sdxl"].native_width == 1024
    assert PRESETS["sdxl"].size_step == PRESETS["sd15"].size_step == 64
    for name in ("sd-turbo", "sdxl-turbo"):
        turbo = PRESETS[name]
        assert turbo.default_steps <= 4 and turbo.default_guidance == 0
        assert int(turbo.default_steps * turbo.vary_subtle) >= 1  # Vary leaves at least one step
    for preset in PRESETS.values():
        assert 0 < preset.vary_subtle < preset.vary_strong <= 1
        assert 0 < preset.upscale_subtle < preset.upscale_creative <= 1


def test_derived_pipelines_share_the_one_resident_weight_set():
    model = load_model("tiny", "cpu")
    img2img, inpaint = model.img2img(), model.inpaint()
    assert model.img2img() is img2img  # built once
    for pipe in (img2img, inpaint):
        assert pipe.unet is model.unet
        assert pipe.vae is model.vae
        assert pipe.text_encoder is model.pipe.text_encoder
    # and the derived diffusers pipelines really run on those shared weights
    source = img2img("a lighthouse", image=torch.zeros(1, 3, 128, 128), strength=0.5, num_inference_steps=2)
    assert source.images[0].size == (128, 128)
    mask = torch.zeros(1, 1, 128, 128)
    mask[..., 64:] = 1
    painted = inpaint(
        "a lighthouse", image=torch.zeros(1, 3, 128, 128), mask_image=mask, num_inference_steps=2
    )
    assert painted.images[0].size == (128, 128)
    # no second copy of any UNet weight exists among the pipelines
    pointers = {p.data_ptr() for pipe in model.pipelines() for p in pipe.unet.parameters()}
    assert pointers == {p.data_ptr() for p in model.unet.parameters()}


def test_loading_a_folder_written_by_save_pretrained(core, tmp_path):
    folder = tmp_path / "my-model"
    core.model.pipe.save_pretrained(folder)
    loaded = EngineCore(EngineConfig(model=str(folder), device="cpu", warmup=False))
    info = loaded.load()
    assert info.family is Family.SD
    assert info.native_width == 128  # from the model's own config
    request = imagine(steps=3, guidance=5.0, style="raw", seeds=(1, 2))
    assert [i.rgb for i in finish(loaded, request).images] == [i.rgb for i in finish(core, request).images]


def test_loading_an_sdxl_folder(xl_core, tmp_path):
    xl_core.model.pipe.save_pretrained(tmp_path / "xl")
    loaded = EngineCore(EngineConfig(model=str(tmp_path / "xl"), device="cpu", warmup=False))
    assert loaded.load().family is Family.SDXL
    request = imagine(steps=2, guidance=5.0, style="raw", seeds=(3,))
    assert finish(loaded, request).images[0].rgb == finish(xl_core, request).images[0].rgb


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("no-such-preset", "unknown model 'no-such-preset'"),
        ("./missing/folder", "does not exist"),
        ("missing.safetensors", "does not exist"),
        ("someone/some-model", "Hugging Face Hub"),
    ],
)
def test_a_model_that_cannot_load_says_why(model, message):
    with pytest.raises(ModelLoadError, match=message):
        EngineCore(EngineConfig(model=model, device="cpu", warmup=False)).load()


def test_the_offline_hub_error_says_what_to_do():
    with pytest.raises(ModelLoadError, match=r"HF_HUB_OFFLINE=1.*local folder"):
        load_model("someone/some-model", "cpu")


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match=r"no model_index\.json"):
        load_model(str(tmp_path), "cpu")


def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):
        load_model("tiny", "cuda")


def test_a_failed_job_leaves_the_loaded_model_serving(core):
    failed = [e for e in run_events(core, imagine(width=100))][-1]
    assert isinstance(failed, Failed)
    done = finish(core, imagine(steps=2, prompt=PromptSpec.single("still here"), seeds=(1,)))
    assert pixels(done.images[0]).std() > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_runs_in_bf16_with_sdpa():
    gpu = EngineCore(EngineConfig(model="tiny", device="cuda", warmup=False))
    gpu.load()
    assert gpu.model.dtype in (torch.bfloat16, torch.float16)
    done = finish(gpu, imagine(steps=2))
    assert len(done.images) == 4


# ---------------------------------------------------------------------------------------------
# Single-file checkpoints
# ---------------------------------------------------------------------------------------------

_RESNET_TO_LDM = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "time_emb_proj": "emb_layers.1",
    "conv_shortcut": "skip_connection",
}
_VAE_ATTENTION_TO_LDM = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _unet_to_ldm(unet) -> dict[str, torch.Tensor]:
    """Our UNet's weights under the original (LDM) names, as an SD 1.x checkpoint stores them."""

    top = {d: ldm for d, ldm in DIFFUSERS_TO_LDM_MAPPING["unet"]["layers"].items()}
    per = unet.config.layers_per_block + 1
    out: dict[str, torch.Tensor] = {}
    for key, value in unet.state_dict().items():
        parts = key.split(".")
        if key in top:
            new = top[key]
        elif parts[0] == "down_blocks":
            b = int(parts[1])
            if parts[2] == "downsamplers":
                new = f"input_blocks.{(b + 1) * per}.0.op." + ".".join(parts[5:])
            else:
                i = b * per + int(parts[3]) + 1
                new = _block(f"input_blocks.{i}", parts[2], parts[4:])
        elif parts[0] == "up_blocks":
            b = int(parts[1])
            if parts[2] == "upsamplers":
                has_attention = hasattr(unet.up_blocks[b], "attentions")
                new = f"output_blocks.{b * per + per - 1}.{2 if has_attention else 1}.conv." + ".".join(
                    parts[5:]
                )
            else:
                new = _block(f"output_blocks.{b * per + int(parts[3])}", parts[2], parts[4:])
        elif parts[0] == "mid_block":
            index = {"resnets.0": 0, "attentions.0": 1, "resnets.1": 2}[f"{parts[1]}.{parts[2]}"]
            rest = parts[3:]
            if parts[1] == "resnets":  # the middle block's layers have no sub-index in LDM
                rest = [_RESNET_TO_LDM.get(rest[0], rest[0]), *rest[1:]]
            new = f"middle_block.{index}." + ".".join(rest)
        else:
            raise AssertionError(f"no LDM name for {key}")
        out["model.diffusion_model." + new] = value
    return out


def _block(prefix: str, kind: str, rest: list[str]) -> str:
    if kind == "resnets":
        return f"{prefix}.0." + _RESNET_TO_LDM.get(rest[0], rest[0]) + "." + ".".join(rest[1:])
    return f"{prefix}.1." + ".".join(rest)


def _vae_to_ldm(vae) -> dict[str, torch.Tensor]:

    top = DIFFUSERS_TO_LDM_MAPPING["vae"]
    blocks = len(vae.config.block_out_channels)
    out: dict[str, torch.Tensor] = {}
    for key, value in vae.state_dict().items():
        parts = key.split(".")
        if key in top:
            new = top[key]
        elif parts[1] in ("down_blocks", "up_blocks"):
            side, b = parts[0], int(parts[2])
            ldm_b = b if side == "encoder" else blocks - 1 - b
            name = "down" if side == "encoder" else "up"
            if parts[3] in ("downsamplers", "upsamplers"):
                sampler = "downsample" if side == "encoder" else "upsample"
                new = f"{side}.{name}.{ldm_b}.{sampler}.conv.{parts[-1]}"
            else:
                rest = ".".join(parts[5:]).replace("conv_shortcut", "nin_shortcut")
                new = f"{side}.{name}.{ldm_b}.block.{parts[4]}.{rest}"
        elif parts[1] == "mid_block" and parts[2] == "resnets":
            rest = ".".join(parts[4:]).replace("conv_shortcut", "nin_shortcut")
            new = f"{parts[0]}.mid.block_{int(parts[3]) + 1}.{rest}"
        elif parts[1] == "mid_block" and parts[2] == "attentions":
            layer = ".".join(parts[4:-1])
            new = f"{parts[0]}.mid.attn_1.{_VAE_ATTENTION_TO_LDM[layer]}.{parts[-1]}"
            if value.dim() == 2:  # the original stores these as 1x1 convolutions
                value = value[:, :, None, None]
        else:
            raise AssertionError(f"no LDM name for {key}")
        out["first_stage_model." + new] = value
    return out


def _save_sd_checkpoint(pipe, path) -> None:

    state = {**_unet_to_ldm(pipe.unet), **_vae_to_ldm(pipe.vae)}
    for key, value in pipe.text_encoder.state_dict().items():
        state["cond_stage_model.transformer.text_model." + key.removeprefix("text_model.")] = value
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))


def test_loading_a_single_safetensors_checkpoint(core, tmp_path, monkeypatch):
    checkpoint = tmp_path / "tiny.safetensors"
    _save_sd_checkpoint(core.model.pipe, checkpoint)
    # Offline, diffusers needs the component configs (tokenizer, scheduler, layer sizes) from a
    # diffusers folder of the same architecture: EngineConfig.model_config (the bot's
    # IMAGINE_MODEL_CONFIG) points at one. The engine reads the config, never the environment.
    configs = tmp_path / "configs"
    core.model.pipe.save_pretrained(configs)
    monkeypatch.setenv("IMAGINE_MODEL_CONFIG", str(tmp_path / "not-there"))
    loaded = EngineCore(
        EngineConfig(model=str(checkpoint), device="cpu", warmup=False, model_config=str(configs))
    )
    assert loaded.load().family is Family.SD
    for ours, theirs in zip(
        loaded.model.unet.state_dict().values(), core.model.unet.state_dict().values(), strict=True
    ):
        assert torch.equal(ours, theirs)
    request = imagine(steps=2, guidance=5.0, style="raw", seeds=(4,))
    assert finish(loaded, request).images[0].rgb == finish(core, request).images[0].rgb


def test_a_single_file_without_configs_offline_says_what_to_do(core, tmp_path, monkeypatch):
    checkpoint = tmp_path / "tiny.safetensors"
    _save_sd_checkpoint(core.model.pipe, checkpoint)
    configs = tmp_path / "configs"
    core.model.pipe.save_pretrained(configs)
    monkeypatch.setenv("IMAGINE_MODEL_CONFIG", str(configs))  # ignored: only the config counts
    with pytest.raises(ModelLoadError, match="IMAGINE_MODEL_CONFIG"):
        EngineCore(EngineConfig(model=str(checkpoint), device="cpu", warmup=False)).load()


def test_a_model_shipping_pndm_gets_euler_on_the_same_schedule(core, tmp_path):

    pipe = build_tiny()
    pipe.scheduler = PNDMScheduler.from_config(pipe.scheduler.config, skip_prk_steps=True)
    pipe.save_pretrained(tmp_path / "pndm")
    loaded = load_model(str(tmp_path / "pndm"), "cpu")
    assert type(loaded.pipe.scheduler).__name__ == "EulerDiscreteScheduler"
    assert loaded.pipe.scheduler.config.beta_schedule == "scaled_linear"


@pytest.mark.parametrize(("arch", "unet_params", "size"), [("sd15", 0.86e9, 512), ("sdxl", 2.57e9, 1024)])
def test_full_size_random_architectures_for_the_benchmark(arch, unet_params, size):
    # Built on the meta device: the real layer shapes, no memory, no download.
    pipe = build_random_weights(arch, torch.device("meta"))
    assert abs(sum(p.numel() for p in pipe.unet.parameters()) - unet_params) < 0.01e9
    latents = torch.zeros(2, 4, size // 8, size // 8, device="meta")
    hidden = torch.zeros(2, 77, pipe.unet.config.cross_attention_dim, device="meta")
    added = None
    if arch == "sdxl":
        added = {
            "text_embeds": torch.zeros(2, 1280, device="meta"),
            "time_ids": torch.zeros(2, 6, device="meta"),
        }
    with torch.no_grad():
        out = pipe.unet(latents, 500, encoder_hidden_states=hidden, added_cond_kwargs=added).sample
    assert out.shape == latents.shape


def test_loading_keeps_library_chatter_off_the_console(tmp_path, capfd, caplog):
    # A saved folder is what operators load: diffusers' dtype advice and loading bars fire there.
    build_tiny().save_pretrained(tmp_path / "model")
    capfd.readouterr()
    before = {name: logging.getLogger(name).level for name in ("transformers", "diffusers")}
    loaded = load_model(str(tmp_path / "model"), "cpu")
    loaded.img2img(), loaded.inpaint()  # derived pipelines re-cast the shared modules
    err = capfd.readouterr().err
    assert "float32" not in err and "Loading pipeline components" not in err, err
    # Only for the load: the libraries' settings are back afterwards.
    assert {name: logging.getLogger(name).level for name in before} == before
    # Our own errors still get through inside the quiet block.
    with quiet_libraries(), caplog.at_level(logging.ERROR, logger="engine"):
        logging.getLogger("engine.models").error("our own error")
    assert "our own error" in caplog.text


_BASE = (
    '[base]\nfamily = "sd"\nsource = "x/y"\nnative_width = 512\nnative_height = 512\nsize_step = 64\n'
    "default_steps = 30\ndefault_guidance = 7\nvary_subtle = 0.4\nvary_strong = 0.75\n"
    "upscale_subtle = 0.2\nupscale_creative = 0.4\n"
)


def test_presets_file_is_data_and_inheritance_changes_only_what_it_says():
    presets = parse_presets(_BASE + '[child]\ninherit = "base"\nfamily = "sdxl"\nnative_width = 1024\n')
    assert list(presets) == ["base", "child"]
    base, child = presets["base"], presets["child"]
    assert (child.name, child.family, child.native_width) == ("child", Family.SDXL, 1024)
    assert child.native_height == 512 and child.vary_strong == base.vary_strong == 0.75
    assert base.default_guidance == 7.0 and base.upscale_tile == 1024  # a field's default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_BASE + '[a]\nfamily = "sd"', "'a' inherits nothing and leaves out source, native_width"),
        (_BASE + '[a]\ninherit = "base"\ncolour = "red"', "'a': 'colour' is not a preset field"),
        ('[a]\ninherit = "base"\n' + _BASE, "'a' inherits from 'base', which is not written above it"),
        (_BASE + '[a]\ninherit = "base"\nfamily = "sd3"', "family must be one of sd, sdxl"),
        (_BASE + '[a]\ninherit = "base"\nsize_step = 1.5', "size_step = 1.5 is not a whole number"),
        (_BASE + '[a]\ninherit = "base"\nsize_step = true', "size_step = True is not a whole number"),
        (_BASE + '[a]\ninherit = "base"\nvary_subtle = "half"', "vary_subtle = 'half' is not a number"),
        ("a = 1\n" + _BASE, "'a' is not a preset: write each one as a [table]"),
        (_BASE + "[a]\ninherit = 3", "inherit = 3 is not a preset's name"),
        (_BASE + '[SDXL2]\ninherit = "base"', "'SDXL2': a name is lowercase letters, digits"),
        (_BASE + '["my model"]\ninherit = "base"', "'my model': a name is lowercase letters, digits"),
    ],
)
def test_presets_file_mistakes_are_named(text, message):
    with pytest.raises(PresetError, match=re.escape(message)):
        parse_presets(text)
