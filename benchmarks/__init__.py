"""Side-by-side benchmarks of regmix's hot paths against the plain paths and the tools researchers use.

One entry point: `python -m benchmarks` (see docs/benchmarks.md, which it regenerates). Everything here
is outside the regmix package: regmix never imports it, and torchattacks (one of the comparisons) is
installed only into benchmarks/.deps by benchmarks/setup.sh.
"""
