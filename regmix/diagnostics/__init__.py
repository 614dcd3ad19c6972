"""Diagnostics behind the paper's visual claims, as numbers and records (.npz / JSON).

landscape: weight- and input-space loss surfaces, checkpoint interpolation, Hessian top eigenvalue.
softmax:   predicted distributions against the one-hot truth (CE, TV, ECE, reliability).
kl_toy:    gradient flow of alpha*KL(P||Q) + beta*KL(Q||P) on the 3-class simplex.
records:   writing and reading the .npz records that viz renders.

Nothing here draws; viz reads the records.
"""
from .records import load_record, save_record

__all__ = ["load_record", "save_record"]
