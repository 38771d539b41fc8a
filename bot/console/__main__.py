"""`python -m bot.console`, the same as the `imagine` script."""

import sys

from bot.console.app import main

sys.exit(main())
