"""The old path of `bot.core.dispatcher`, kept so existing imports work; new code imports the new one."""

import sys

from bot.core import dispatcher

sys.modules[__name__] = dispatcher
