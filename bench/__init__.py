"""Benchmarks and fault tests: `python -m bench [--small]` (or `make bench`).

Each scenario module exposes `run(ctx) -> dict` of figures; `bench.targets` turns the
figures into PASS/FAIL lines; `bench.report` prints the table and writes the JSON.
"""
