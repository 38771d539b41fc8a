"""How fast the prompt language reads prompts: `python -m benchmarks.bench_prompt`.

Parses 10,000 typical prompts (a description, sometimes `::` weights or an image URL, a few
parameters) and prints the time for all of them and per prompt, plus permutation expansion and
`dimensions_for`. The best of several rounds is reported, so a busy machine skews it less.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable

from bot.prompt import dimensions_for, expand_permutations, parse_prompt

_SUBJECTS = [
    "a lighthouse at dusk",
    "portrait of an old fisherman, dramatic lighting, 85mm",
    "a cozy cabin in a snowy forest, warm light in the windows",
    "cyberpunk street market at night, neon signs, rain, reflections",
    "watercolor painting of a fox in a meadow",
    "isometric pixel art of a tiny island with a castle",
    "a bowl of ramen, studio photo, steam",
    "an astronaut riding a horse on the moon, highly detailed",
]
# One parameter of each kind at most (a repeated parameter is an error); spellings vary.
_PARAMETERS = [
    ["--ar 16:9", "--ar 2:3", "—ar 3:2", "--aspect 4:5"],
    ["--seed 1234567", "--seed 42"],
    ["--no people, text, watermark", "--no blur"],
    ["--chaos 20", "--c 5"],
    ["--s 250", "--stylize 50"],
    ["--q .5", "--quality 2"],
    ["--style raw"],
    ["--tile"],
    ["--v sdxl", "--version turbo"],
    ["--weird 100"],
    ["--stop 80"],
]


def typical_prompts(count: int, seed: int = 0) -> list[str]:
    """`count` prompts shaped like what members type, reproducibly."""
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        text = rng.choice(_SUBJECTS)
        if rng.random() < 0.15:
            text = text.replace(", ", "::2 ", 1) + ":: blur::-.5"
        if rng.random() < 0.1:
            text = "https://cdn.example.com/ref.png " + text
        params = [rng.choice(kind) for kind in rng.sample(_PARAMETERS, rng.randint(0, 4))]
        prompts.append(" ".join([text, *params]))
    return prompts


def _best_of(rounds: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="prompts per round (default 10,000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best is reported (default 5)")
    args = parser.parse_args(argv)

    prompts = typical_prompts(args.count)
    permutation_prompts = [f"{p} {{--seed 1, --seed 2}}" for p in typical_prompts(args.count // 10, seed=1)]

    parse_s = _best_of(args.rounds, lambda: [parse_prompt(p) for p in prompts])
    canonical_s = _best_of(args.rounds, lambda: [parse_prompt(str(parse_prompt(p))) for p in prompts])
    expand_s = _best_of(args.rounds, lambda: [expand_permutations(p) for p in permutation_prompts])
    sizes_s = _best_of(args.rounds, lambda: [dimensions_for((16, 9), 1024, 1024, 64) for _ in range(1000)])

    print(
        f"parse_prompt: {args.count:,} typical prompts in {parse_s * 1000:.1f} ms "
        f"({parse_s / args.count * 1e6:.1f} µs each)"
    )
    print(
        f"parse + str + parse again: {canonical_s * 1000:.1f} ms for {args.count:,} "
        f"({canonical_s / args.count * 1e6:.1f} µs each)"
    )
    print(
        f"expand_permutations: {len(permutation_prompts):,} prompts with one group "
        f"in {expand_s * 1000:.1f} ms "
        f"({expand_s / len(permutation_prompts) * 1e6:.1f} µs each)"
    )
    print(f"dimensions_for: {sizes_s * 1000:.2f} µs each (1,000 calls in {sizes_s * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
