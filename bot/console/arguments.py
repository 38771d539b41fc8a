"""The `imagine` command line: subcommands and arguments, exit statuses, the `--json` job fields."""

from __future__ import annotations

import argparse
import logging

log = logging.getLogger(__name__)

CONSOLE_USER_ID = 0
EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
JOB_FIELDS = ("job_id", "parent_id", "kind", "status", "width", "height", "seeds", "images", "grid", "error")


class ConsoleError(Exception):
    """Bad input at the console: one line, exit status 2."""


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    common.add_argument(
        "-v", "--verbose", action="store_true", help="log at IMAGINE_LOG_LEVEL (default: warnings only)"
    )

    parser = argparse.ArgumentParser(
        prog="imagine",
        description="Make images from the terminal: the same engine, queue and history as the Discord bot.",
        epilog=(
            "Imagine Web: `imagine web` serves it; "
            "`imagine web-link --user ID --guild ID` prints a sign-in link."
        ),
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="a 2x2 grid from a prompt (Midjourney parameters work)")
    p.add_argument("prompt", help='e.g. "a lighthouse at dusk --ar 16:9 --seed 42"')

    p = sub.add_parser("upscale", parents=[common], help="make an image 2x (Subtle unless --creative)")
    p.add_argument("job")
    p.add_argument("index", nargs="?", help="1-4: the cell of a grid job; leave out for a single image")
    p.add_argument("--creative", action="store_true", help="Upscale (Creative) instead of Subtle")

    p = sub.add_parser("vary", parents=[common], help="four variations of an image (Strong unless --subtle)")
    p.add_argument("job")
    p.add_argument("index", nargs="?", help="1-4: the cell of a grid job; leave out for a single image")
    strength = p.add_mutually_exclusive_group()
    strength.add_argument("--strong", action="store_true", help="Vary (Strong), the default")
    strength.add_argument("--subtle", action="store_true", help="Vary (Subtle)")
    p.add_argument("--prompt", help="Remix: an edited prompt for the new images")

    p = sub.add_parser("zoom", parents=[common], help="zoom out by FACTOR (1.0-2.0): four images")
    p.add_argument("job")
    p.add_argument("args", nargs="+", metavar="[INDEX] FACTOR")
    p.add_argument("--prompt", help="custom zoom: an edited prompt (its --ar may change the aspect ratio)")

    p = sub.add_parser("pan", parents=[common], help="extend the image left, right, up or down: four images")
    p.add_argument("job")
    p.add_argument("args", nargs="+", metavar="[INDEX] left|right|up|down")
    p.add_argument(
        "--prompt", help="Remix: an edited prompt for the new area (no --ar: a pan keeps one side)"
    )

    p = sub.add_parser("square", parents=[common], help="make the image square by outpainting: four images")
    p.add_argument("job")
    p.add_argument("index", nargs="?", help="1-4: the cell of a grid job; leave out for a single image")

    p = sub.add_parser(
        "region",
        parents=[common],
        help="Vary (Region): redraw the masked part of an upscaled image: four images",
    )
    p.add_argument("job", help="an upscaled (single-image) job")
    p.add_argument("--mask", required=True, help="a PNG of the image's size, white where new content goes")
    p.add_argument("--prompt", help="an edited prompt for the region (default: the job's)")

    p = sub.add_parser("reroll", parents=[common], help="the same job again with a new seed")
    p.add_argument("job")
    p.add_argument("--prompt", help="Remix: an edited prompt for the new images")

    p = sub.add_parser("blend", parents=[common], help="blend 2-5 image files into a 2x2 grid")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG, WebP or GIF files")
    p.add_argument(
        "--dimensions", default="square", help="portrait (2:3), square (1:1, the default) or landscape (3:2)"
    )
    p.add_argument("--prompt", help="optional words to steer the blend, with parameters")

    p = sub.add_parser("shorten", parents=[common], help="rank a prompt's words; suggest shorter prompts")
    p.add_argument("prompt")

    p = sub.add_parser("describe", parents=[common], help="four prompts for an image file")
    p.add_argument("image", metavar="IMAGE")

    p = sub.add_parser("pick", parents=[common], help="imagine prompt N of a shorten or describe answer")
    p.add_argument("job")
    p.add_argument("number", metavar="N", help="the prompt's number, as listed (1-5)")

    p = sub.add_parser("history", parents=[common], help="recent jobs, newest first")
    p.add_argument("--user", help="only this user id (0 is the console)")
    p.add_argument("--limit", default="20", help="how many jobs (1-500, default 20)")

    p = sub.add_parser("show", parents=[common], help="one job, its files and its lineage")
    p.add_argument("job")

    p = sub.add_parser("option", parents=[common], help="your --name bundles of parameters (/prefer option)")
    p.add_argument("action", choices=("set", "list"))
    p.add_argument("name", nargs="?", help="set: the option's name (use it as --NAME)")
    p.add_argument(
        "value", nargs="?", help='set: its parameters, e.g. "--ar 21:9 --stylize 250"; none removes it'
    )

    sub.add_parser(
        "resume", parents=[common], help="finish the console jobs an earlier run left queued or running"
    )

    p = sub.add_parser("db", parents=[common], help="database maintenance")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", parents=[common], help="run the migrations up to the newest schema")
    return parser


def parse_index(text: str | None) -> int | None:
    """A console INDEX (1-based, like U1-U4) as the job service's 0-based cell index."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ConsoleError(f"INDEX must be a whole number from 1 to 4, got {text!r}") from None
    if value < 1:
        raise ConsoleError(f"INDEX must be from 1 to 4, got {value}")
    return value - 1


def split_index(args: list[str], what: str) -> tuple[int | None, str]:
    if len(args) == 1:
        return None, args[0]
    if len(args) == 2:
        return parse_index(args[0]), args[1]
    raise ConsoleError(f"expected [INDEX] {what}, got {' '.join(args)!r}")
