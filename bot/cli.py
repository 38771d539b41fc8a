"""`imagine`: the console's subcommands, and `web` / `web-link` for Imagine Web.

The two front ends may not import each other, so this launcher (outside both) picks one by the
first argument; each has its own `main`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bot.console import main as console_main
from bot.web.cli import main as web_main

WEB_COMMANDS = ("web", "web-link")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in WEB_COMMANDS:
        return web_main(args)
    return console_main(args)


if __name__ == "__main__":
    sys.exit(main())
