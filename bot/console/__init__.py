"""`imagine`, the console front end: the same jobs as the Discord bot, without Discord.

An adapter over the core (`bot.core`): it parses a command line, calls the job service, and
prints. It imports no other front end. `bot.console:main` is the `imagine` console script.
"""

from bot.console.app import main, run_console
from bot.console.arguments import JOB_FIELDS, ConsoleError, build_parser
from bot.console.output import job_json

__all__ = ["JOB_FIELDS", "ConsoleError", "build_parser", "job_json", "main", "run_console"]
