"""Peak memory of 20 concurrent 40-megapixel image prompts, at several decode limits.

    python benchmarks/bench_decodes.py [--uploads 20] [--limits 1,2,4,20]

Each limit runs in a fresh process (so one run's freed memory does not hide the next one's
peak): it holds the 20 uploads' bytes, decodes them all at once through `decode_bounded` with
`IMAGINE_MAX_IMAGE_DECODES` set to the limit, and reports the process's peak resident memory
(VmHWM) above what it used before decoding. Figures only, no pass/fail: DESIGN.md keeps speed
and memory out of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import subprocess
import sys
import time

from PIL import Image

from bot.core import decode

WIDTH, HEIGHT = 7744, 5168  # 40.0 MP, 3:2 like a phone photo


def _kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _upload() -> bytes:
    """A 40 MP PNG: a gradient that compresses small but decodes to 120 MB of pixels."""

    image = Image.linear_gradient("L").resize((WIDTH, HEIGHT)).convert("RGB")
    data = io.BytesIO()
    image.save(data, format="PNG", compress_level=1)
    return data.getvalue()


def child(uploads: int, limit: int) -> None:

    decode.configure_decodes(limit)
    data = _upload()
    payloads = [bytes(data) for _ in range(uploads)]  # each member's upload is its own buffer
    base = _kib("VmRSS")

    async def run() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(decode.decode_bounded(p, "image/png") for p in payloads))
        return time.perf_counter() - start

    seconds = asyncio.run(run())
    print(
        json.dumps(
            {
                "limit": limit,
                "peak_mib": (_kib("VmHWM") - base) / 1024,
                "seconds": seconds,
                "file_mib": len(data) / 2**20,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=20)
    parser.add_argument("--limits", default="1,2,4,20")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.uploads, args.child)
        return
    print(f"{args.uploads} concurrent {WIDTH}x{HEIGHT} ({WIDTH * HEIGHT / 1e6:.1f} MP) PNG uploads")
    print(f"{'decodes at once':>16} {'peak extra RSS':>15} {'wall time':>10}")
    for limit in (int(x) for x in args.limits.split(",")):
        out = subprocess.run(
            [sys.executable, __file__, "--uploads", str(args.uploads), "--child", str(limit)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        row = json.loads(out.strip().splitlines()[-1])
        print(f"{limit:>16} {row['peak_mib']:>11.0f} MiB {row['seconds']:>8.1f} s")


if __name__ == "__main__":
    main()
