"""Keep transformers' and diffusers' chatter off the operator's console while models load.

Loading prints advice meant for library developers, not for someone running a bot: "requires
torchvision (not installed); falling back...", "There are modules in UNet2DConditionModel that
should be kept in float32...", deprecation notices, and progress bars for reading weights from a
local disk. `quiet_libraries()` silences exactly that, and only while the load runs: the libraries'
own loggers go to ERROR (their errors still show), their loading progress bars are off, and their
Python warnings are ignored. Our loggers (`engine.*`) are untouched, and every failure still
reaches the user as a `ModelLoadError` with its reason. Hub download bars stay: a first download
of several gigabytes should show that it is moving.

Imported only where torch is (engine.models); importing the libraries here is what sets up their
loggers, so our levels are not overwritten afterwards.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

LIBRARIES = ("transformers", "diffusers")
# Python warnings raised from inside these packages (FutureWarning, UserWarning, DeprecationWarning).
_LIBRARY_MODULES = r"(transformers|diffusers|huggingface_hub|accelerate)(\.|$)"


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence library warnings and loading progress bars inside the block; restore them after."""
    # Heavy (diffusers, transformers): imported only where a model loads, which imports them anyway.
    import diffusers.utils.logging as diffusers_logging
    import transformers.utils.logging as transformers_logging

    loggers = [logging.getLogger(name) for name in LIBRARIES]
    levels = [logger.level for logger in loggers]
    bars = [
        (module, module.is_progress_bar_enabled()) for module in (diffusers_logging, transformers_logging)
    ]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=_LIBRARY_MODULES)
        for logger in loggers:
            logger.setLevel(max(logger.getEffectiveLevel(), logging.ERROR))
        for module, _ in bars:
            module.disable_progress_bar()
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)
            for module, enabled in bars:
                if enabled:
                    module.enable_progress_bar()
