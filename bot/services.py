"""The old path of `bot.core.services`, kept so existing imports work; new code imports the new one."""

import sys

from bot.core import services

sys.modules[__name__] = services
