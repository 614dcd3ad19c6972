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
CONTROLS=pgk_5step,regmix_5step,pgd_at_ema,pgd_at_ema_ls
MONITOR=regmix_monitor_apgd_t,fgsm_rs_monitor_apgd_t
# Each run gets every evaluation and diagnostics record right after its training (no cheap-first pass), so
# that a run, once done, never needs its checkpoints again: docs/results/keep_study.py keeps the study's
# progress in the repository between sessions without them (a fresh machine starts where the last stopped).
# 1. the main pgk and regmix runs (paper-form regmix defaults, gated EMA, masking monitor)
phase --methods pgk,regmix --part main
# 2. the controls; 2b. best.pt on the strong attack (eval.select=strong): does it remove the masked seeds?
phase --part sweeps --sweeps $CONTROLS
phase --part sweeps --sweeps regmix_select_strong
# 2c. FGSM-RS's main runs (does the monitor flag catastrophic overfitting?); 3. PGD-AT's, the controls' baseline
phase --methods fgsm_rs,pgd_at --part main
# 4. architecture, 5. the longer schedule
phase --part sweeps --sweeps pgd_at_width32,pgk_width32,regmix_width32
phase --part sweeps --sweeps longer_schedule_seeds
# 6. the monitor's targeted pair while training (training only; read against the main runs)
phase --part sweeps --sweeps $MONITOR
# 7 was moved after 6 on 2026-12-06: its training code did not change for this schedule (the main PGK,
# RegMix, FGSM-RS and PGD-AT runs repeated the first study's), so it answers the least.
# 7. the claims without label smoothing, with today's PGK and RegMix (three seeds each)
phase --part sweeps --sweeps regmix_no_smoothing,pgk_no_smoothing
# 8. (added 2026-12-06, after 6 was read) the same targeted pair on the main PGK and PGD-AT trainings, which it was
#    not chosen on: its false alarms on runs none of which is masked
phase --part sweeps --sweeps pgk_monitor_apgd_t,pgd_at_monitor_apgd_t
# Standard training, TRADES and MART are not trained again (decided 2026-12-06): their code changed as PGD-AT's
# and FGSM-RS's did, and those trained the first study's very weights again, so the first study's main rows
# stand for them (docs/results/README.md). To train them anyway:
#   phase --methods standard,trades,mart --part main
echo "[phases] $(date -u +%FT%TZ) all phases done"
