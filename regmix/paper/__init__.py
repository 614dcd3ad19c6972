"""The RegMix paper's material, tested with the study engine (regmix.study) on the runs of a suite.

    claims.py    the paper's claims (RegMix is more robust, converges faster, has a smoother landscape,
                 a softmax closer to the truth, ...), each decided over seeds on the metrics it names
    defaults.py  the rules, written and dated before the sweeps were read, that chose RegMix's alpha,
                 beta and gamma from them, and the check over seeds each choice had to pass
    threshold.py the rule, written before the study's APGD was read, that checks the masking monitor's
                 threshold against the runs PGD-20 overstated
    tables.py    DIR/tables.md: the main table, the same-points table, the choice of the defaults, the sweeps
    results.py   `regmix study SUITE --results DIR`: the engine's numbers, then the claims and the tables

This package sits above the engine: it imports regmix.study, and nothing in regmix.study imports it.
They are joined from above, by the `regmix study` command (regmix/commands/study.py), which trains and
evaluates with the engine and writes a results folder with regmix.paper.results.write_results. Another
paper's study would be a package beside this one, with its own claims, on the same engine.
"""
