"""Performance benchmarks: every figure beside the reference it is judged against.

Run `python scripts/bench.py ...` (or `python -m scripts.benchmarks ...` from the repo
root); `--help` lists the sections and their options. Results are printed as one table
and written as JSON (`--out`); docs/benchmarks.md holds the latest run.

Layout:
  cli.py       arguments, the section registry (SECTIONS), the run loop, the JSON
  context.py   what sections share: arguments, work folder, the bare reference model,
               the server's embedder, an index over --corpus built once
  measure.py   timing, percentiles, memory, logging
  report.py    the machine and library versions, and the one table all sections print
  harness      the real-server subprocess is scripts/harness.py (the tests use it too)
  latency.py, throughput.py, build.py, rebuild.py, scale.py (+ scale_child.py),
  startup.py   one module per section

Adding a section: write one module with
  run(ctx: Context) -> dict            the figures, JSON-ready
  rows(result: dict) -> list[Row]      its table rows: (figure, value, reference, target)
  add_arguments(parser) -> None        optional: the section's own options
  SMOKE_ARGS = ("--option", "value")   optional: options that make it run in seconds
and add one entry to SECTIONS in cli.py. tests/scripts/test_bench_smoke.py runs every
registered section with its SMOKE_ARGS. Measure against a reference taken in the same
run (interleave them, see measure.blocks): the machine is shared and noisy.
"""
