"""Diagnostics behind the paper's visual claims, as numbers and records (.npz / JSON).

landscape: weight- and input-space loss surfaces, checkpoint interpolation, Hessian top eigenvalue.
softmax:   predicted distributions against the one-hot truth (CE, TV, ECE, reliability).
kl_toy:    alpha*KL(P||Q) + beta*KL(Q||P): simplex flows and what the share alpha/(alpha+beta) changes.
compute:   run directory in, record out (RUN/diagnostics/).
ensure:    the records a set of figures needs: `ensure_records` computes the missing ones,
           `record_paths` names them for a reader.
records:   writing and reading the .npz records.

Nothing here draws: viz reads the records and never computes them.
"""
from .ensure import RecordSet, ensure_records, record_paths
from .records import load_record, save_record

__all__ = ["RecordSet", "ensure_records", "load_record", "record_paths", "save_record"]
