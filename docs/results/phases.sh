#!/bin/bash
# The mnist5k study of issue 20, phase by phase in order of priority (docs/results/README.md is written from
# what it produces). Every phase is resumable: finished runs and evaluations are skipped and an interrupted
# run resumes from its last checkpoint, so the script can be stopped (SIGTERM: the current training writes a
# checkpoint and stops) and started again with the same command. One `regmix study` at a time (the folder's
# lock refuses a second). Run from the checkout, detached from the shell:
#   setsid nohup bash docs/results/phases.sh >> runs/study-mnist5k.log 2>&1 &
# STUDY_SRC=DIR runs the code of a snapshot (git archive <commit> | tar -x -C DIR) instead of the checkout,
# so that edits made while the study runs do not change its runs.
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "${STUDY_SRC:-$ROOT}" || exit 1
export PYTHONPATH="$PWD"
STUDY="$ROOT/.venv/bin/python -m regmix study mnist5k --out $ROOT/runs/study-mnist5k"
child=0
trap 'echo "[phases] stopping (signal)"; [ $child -ne 0 ] && kill -TERM $child; wait $child; exit 143' TERM INT
phase() {
  echo "[phases] $(date -u +%FT%TZ) phase: $*"
  $STUDY "$@" &
  child=$!
  wait $child
  rc=$?
  child=0
  echo "[phases] $(date -u +%FT%TZ) phase done (exit $rc): $*"
  [ $rc -eq 0 ] || exit $rc
}
CHEAP=whole,whole_last,wide15,wide2
CONTROLS=pgk_5step,regmix_5step,pgd_at_ema,pgd_at_ema_ls
# 1. the main pgk and regmix runs (changed: paper-form regmix defaults, gated EMA, masking monitor):
#    trained with the cheap evaluations first, then APGD and AutoAttack. RegMix's seeds 1 and 4 first:
#    the two seeds the last study found masked (does the monitor flag them while training?)
phase --methods regmix --seeds 1,4 --part main --evals $CHEAP
phase --methods regmix,pgk --part main --evals $CHEAP
phase --methods pgk,regmix --part main
# 2. the controls
phase --part sweeps --sweeps $CONTROLS --evals $CHEAP
phase --part sweeps --sweeps $CONTROLS
# 2b. best.pt on the strong attack (eval.select=strong): does it remove the masked seeds?
phase --part sweeps --sweeps regmix_select_strong
# 2c. FGSM-RS's main runs: does the monitor flag its catastrophic overfitting (the pilot's FGSM-RS overfit)?
phase --methods fgsm_rs --part main
# 3. PGD-AT's main runs: the baseline of the EMA / smoothing control (no committed run folders to reuse)
phase --methods pgd_at --part main
# 4. architecture, 5. the longer schedule
phase --part sweeps --sweeps pgd_at_width32,pgk_width32,regmix_width32
phase --part sweeps --sweeps longer_schedule_seeds
# 6. the other methods' main runs (unchanged methods, retrained: the study needs their run folders; before 5b
#    since 2026-12-05 20:35 UTC: the main table needs them, 5b only repeats an answer of the first study)
phase --methods standard,trades,mart --part main
# 5b. the claims without label smoothing, with today's PGK and RegMix (three seeds each; the first study
#     answered them with the code of 2026-11-26)
phase --part sweeps --sweeps regmix_no_smoothing,pgk_no_smoothing
echo "[phases] $(date -u +%FT%TZ) all phases done"
