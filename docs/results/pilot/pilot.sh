#!/bin/bash
# The pilot runs that chose the mnist5k study's setting (docs/results/README.md, "Choosing the setting").
# One seed each; every run evaluated on the first 300 test digits with PGD-20 and APGD-CE + APGD-T.
# Run from the repository root after `make setup`: bash docs/results/pilot/pilot.sh  (about 30 min on 2 cores)
# Table: .venv/bin/regmix report runs/pilot/*/eval/*.json   (the records of this run are in records/)
set -euo pipefail
R=.venv/bin/regmix
OUT=runs/pilot
run() {  # name method [--set ...]
  local name=$1 method=$2; shift 2
  $R train --config configs/study/mnist5k/$method.yaml --out $OUT --name $name --no-progress "$@"
  $R eval $OUT/$name --n 300 --attacks clean,pgd20,aa:apgd-ce+apgd-t --no-sanity
}
# eps 0.3, 20 epochs, warm-up 10 (the recipes' other settings: configs/study/mnist5k/*.yaml)
E03=(--set threat.eps=0.3 --set train.epochs=20 --set train.eps_warmup_epochs=10 --set "schedule.milestones=[16]")
run pgk_e03 pgk "${E03[@]}" --set threat.step=0.3
run pgk_e03_t1 pgk "${E03[@]}" --set threat.step=0.3 --set method.options.true_class_target=1.0
run regmix_e03 regmix "${E03[@]}" --set threat.step=0.3
run regmix_e03_t1 regmix "${E03[@]}" --set threat.step=0.3 --set method.options.true_class_target=1.0
run pgd_at_e03 pgd_at "${E03[@]}" --set threat.step=0.1
# eps 0.2, 30 epochs, warm-up 15: the setting the study uses (its recipes need no --set for it)
run fgsm_rs_e02 fgsm_rs
run pgk_e02 pgk
