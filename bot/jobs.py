"""The old path of `bot.core.jobs`, kept so existing imports work; new code imports the new one."""

import sys

from bot.core import jobs

sys.modules[__name__] = jobs
