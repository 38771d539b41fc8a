"""The old path of `bot.core.moderation`, kept so existing imports work; new code imports the new one."""

import sys

from bot.core import moderation

sys.modules[__name__] = moderation
