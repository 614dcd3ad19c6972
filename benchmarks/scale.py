"""How big each comparison is: the full run (for docs/benchmarks.md) and a smoke run (seconds, CI)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    repeats: int            # timed rounds per contender (alternating)
    warmup: int             # untimed rounds first
    train_points: int       # digits used to train the benchmark's model
    train_epochs: int
    batch: int              # training step batch (the demo recipes' 128)
    steps_per_round: int    # training steps in one timed round
    attack_points: int      # points attacked in the throughput comparison
    eval_points: int        # points of the PGD-20 compacted-vs-masked evaluation
    landscape_steps: int    # planar_interpolation steps (steps x steps grid)
    landscape_points: int   # digits the landscape is evaluated on
    aa_points: int          # AutoAttack adapter vs direct
    aa_iters: int           # APGD / FAB iterations (None in the full run: the standard version's)
    aa_square_queries: int
    memory_grid: int        # landscape grid of the memory case (21 in the full run)
    memory_aa_points: int   # points of the memory case's AutoAttack evaluation
    memory_aa_iters: int
    gpu_steps: int          # timed training steps per GPU configuration

    def to_dict(self):
        return asdict(self)


FULL = Scale(name="full", repeats=5, warmup=1, train_points=3500, train_epochs=2, batch=128, steps_per_round=4,
             attack_points=512, eval_points=1000, landscape_steps=11, landscape_points=512,
             aa_points=100, aa_iters=0, aa_square_queries=0, memory_grid=21, memory_aa_points=1000,
             memory_aa_iters=10, gpu_steps=30)

SMOKE = Scale(name="smoke", repeats=1, warmup=0, train_points=512, train_epochs=4, batch=16, steps_per_round=1,
              attack_points=32, eval_points=32, landscape_steps=3, landscape_points=32, aa_points=8,
              aa_iters=2, aa_square_queries=10, memory_grid=3, memory_aa_points=16, memory_aa_iters=2,
              gpu_steps=2)
