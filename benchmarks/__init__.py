"""The benchmarks: each prints figures and asserts nothing (DESIGN.md keeps speed out of the tests).

`python -m benchmarks` lists them; `python -m benchmarks NAME [ARGS...]` runs one;
`python -m benchmarks all` runs the quick ones, one after another, each in its own process.
"""
