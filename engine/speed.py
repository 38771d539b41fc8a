"""The engine's speed paths: what makes the same model draw the same pictures faster on a GPU.

Each path is one `EngineConfig` field (one `IMAGINE_*` setting) and is applied once, to the
resident model, after it is loaded and placed (`engine.models.load_model`):

- precision (`dtype`) and channels-last memory layout are chosen while the model is placed
  (`engine.models._place`); PyTorch's scaled-dot-product attention is diffusers' default processor;
- `fuse_qkv`: one matmul for query, key and value instead of three (diffusers' `fuse_qkv_projections`);
- `fp8`: Linear weights stored as float8 (e4m3) with one scale per tensor; `matmul` also runs the
  matmul in float8 (`torch._scaled_mm`, the H100/H200's fp8 tensor cores) where the shapes allow;
- `compile`: `torch.compile` of the UNet, either `regional` (each repeated block type is compiled
  once and reused by every instance, so a cold start compiles a handful of small graphs) or `full`;
  compiled code is kept on disk (`compile_cache_dir`) so a restart reuses it;
- `cuda_graphs`: the compiled UNet is replayed as CUDA graphs ("reduce-overhead"), one per shape;
  refused on a CPU with a log line (there is nothing to replay there).

The order matters: fusing changes which Linear layers exist, float8 replaces Linear layers, and
compilation must see the final modules, so it comes last.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F

from engine.api import EngineConfig
from engine.models import LoadedModel

log = logging.getLogger(__name__)

# The block types `regional` compiles: together they are nearly all of a UNet's work, and each type
# repeats many times (SDXL has 70 transformer blocks), so compiling per type is cheap.
REGIONAL_BLOCKS = ("BasicTransformerBlock", "ResnetBlock2D")
FP8_MAX = torch.finfo(torch.float8_e4m3fn).max  # 448
# Dynamo recompiles a block once per new input shape until its dimensions turn dynamic; the aspect
# buckets, the down/up resolutions and the batch sizes can pass the default limit of 8, after
# which it would silently run the block uncompiled.
RECOMPILE_LIMIT = 64


def apply_speed(model: LoadedModel, config: EngineConfig) -> tuple[str, ...]:
    """Apply the configured paths to the loaded model; returns the names of those in use."""
    used = [str(model.dtype).removeprefix("torch.")]
    if _is_channels_last(model):
        used.append("channels-last")
    unets = [pipe.unet for pipe in _pipes(model)]
    if config.fuse_qkv:
        for pipe in _pipes(model):
            pipe.unet.fuse_qkv_projections()
            pipe.vae.fuse_qkv_projections()
        used.append("fused-qkv")
    if config.fp8 != "off":
        count = sum(quantize_fp8(unet, matmul=config.fp8 == "matmul") for unet in unets)
        log.info("float8 (%s): %d Linear layers of the UNet now hold float8 weights", config.fp8, count)
        used.append(f"fp8:{config.fp8}")
    if config.compile != "off":
        graphs = config.cuda_graphs
        if graphs and model.device.type != "cuda":
            log.warning(
                "IMAGINE_CUDA_GRAPHS is on but the engine runs on %s: CUDA graphs need a CUDA GPU, "
                "so the UNet is compiled without them",
                model.device,
            )
            graphs = False
        for unet in unets:
            compile_unet(unet, config.compile, config.compile_backend, config.compile_cache_dir, graphs)
        used.append(f"compile:{config.compile}")
        if graphs:
            used.append("cuda-graphs")
        model.cuda_graphs = graphs
    model.speed = tuple(used)
    return model.speed


def _pipes(model: LoadedModel) -> list:
    """The pipelines with a UNet of their own: the base model and a dedicated inpainting model."""
    return [model.pipe] + ([model.inpaint_override] if model.inpaint_override is not None else [])


def _is_channels_last(model: LoadedModel) -> bool:
    weight = next((m.weight for m in model.unet.modules() if isinstance(m, torch.nn.Conv2d)), None)
    return weight is not None and weight.is_contiguous(memory_format=torch.channels_last)


# ---------------------------------------------------------------------------------------------
# torch.compile
# ---------------------------------------------------------------------------------------------


def use_compile_cache(cache_dir: str | None) -> None:
    """Keep inductor's compiled code (FX graph cache, kernels, autotuning) in `cache_dir`.

    Inductor reads TORCHINDUCTOR_CACHE_DIR whenever it looks for a cached artifact, so setting it
    here, before the first compilation, is enough. A restart with the same directory (under the
    data dir by default) finds the compiled graphs and skips inductor's code generation.
    """
    import torch._inductor.config as inductor_config  # heavy: the compiler, only when compiling

    inductor_config.fx_graph_cache = True
    if cache_dir:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(cache_dir).resolve())


def compile_unet(
    unet: torch.nn.Module, mode: str, backend: str, cache_dir: str | None, cuda_graphs: bool
) -> int:
    """Compile the UNet (`regional`: each block in `REGIONAL_BLOCKS`; `full`: the whole forward).

    Compilation is lazy: the first call at each shape compiles (the engine's warm-up makes those
    calls). Returns the number of modules marked for compilation.
    """
    import torch._dynamo  # heavy: the compiler, only when compiling

    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
    if backend == "inductor":
        use_compile_cache(cache_dir)
    options: dict = {"backend": backend}
    if cuda_graphs:
        options["mode"] = "reduce-overhead"  # inductor's CUDA graph trees: one graph per shape
    if mode == "full":
        unet.compile(**options)
        return 1
    count = 0
    for module in unet.modules():
        if type(module).__name__ in REGIONAL_BLOCKS:
            module.compile(**options)
            count += 1
    return count


def before_unet_call(model: LoadedModel) -> None:
    """Called before each denoising step's UNet call: tells CUDA graph trees a new step begins,
    so the previous step's outputs (already consumed) may be overwritten by the next replay."""
    if model.cuda_graphs:
        torch.compiler.cudagraph_mark_step_begin()


# ---------------------------------------------------------------------------------------------
# float8 weights
# ---------------------------------------------------------------------------------------------


class Float8Linear(torch.nn.Module):
    """A Linear layer whose weight is stored in float8 (e4m3) with one float32 scale per tensor.

    The weight takes half the memory of bf16. In `matmul` mode the input is scaled to float8 too
    (one scale per call) and the product runs in `torch._scaled_mm`, the fp8 tensor-core matmul on
    H100/H200; shapes it cannot take (a side not a multiple of 16) dequantise instead.

    Both buffers are kept as integer views of their bytes: `module.to(dtype)` (which diffusers
    calls when pipelines are derived or the VAE is upcast) casts every floating-point tensor and
    would otherwise turn the float8 weight back into bf16 and round the scale.
    """

    def __init__(self, linear: torch.nn.Linear, matmul: bool) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scale = (weight.abs().amax() / FP8_MAX).clamp(min=1e-12)
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.matmul = matmul
        self.register_buffer("weight_bits", (weight / scale).to(torch.float8_e4m3fn).view(torch.uint8))
        self.register_buffer("scale_bits", scale.reshape(1).view(torch.int32))
        self.bias = linear.bias

    @property
    def weight_scale(self) -> torch.Tensor:
        return self.scale_bits.view(torch.float32)[0]

    def dequantised(self, dtype: torch.dtype) -> torch.Tensor:
        """The weight back in `dtype` (what the matmul sees when it does not run in float8)."""
        return self.weight_bits.view(torch.float8_e4m3fn).to(dtype) * self.weight_scale.to(dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // x.shape[-1]
        if self.matmul and rows % 16 == 0 and self.in_features % 16 == 0 and self.out_features % 16 == 0:
            flat = x.reshape(rows, self.in_features)
            x_scale = (flat.abs().amax().float() / FP8_MAX).clamp(min=1e-12)
            x8 = (flat.float() / x_scale).to(torch.float8_e4m3fn)
            out = torch._scaled_mm(
                x8,
                self.weight_bits.view(torch.float8_e4m3fn).t(),
                scale_a=x_scale,
                scale_b=self.weight_scale,
                out_dtype=x.dtype,
            )
            if self.bias is not None:
                out = out + self.bias
            return out.reshape(*x.shape[:-1], self.out_features)
        return F.linear(x, self.dequantised(x.dtype), self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, matmul={self.matmul}"


def quantize_fp8(module: torch.nn.Module, matmul: bool) -> int:
    """Replace every `nn.Linear` inside `module` by a `Float8Linear`; returns how many."""
    count = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(parent, name, Float8Linear(child, matmul))
                count += 1
    return count
