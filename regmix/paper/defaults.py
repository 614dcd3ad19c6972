"""RegMix's AMR weights (alpha, beta) and AGR weight (gamma) chosen from a study's sweeps, and the tables
that say why.

The sweep trains one seed per cell, and one seed of RegMix varies by several points of robust accuracy
(the main table's std over seeds), so the raw best cell is partly luck. The rule, fixed before the sweep
was read: score each cell by its robust accuracy on the whole test split (the mean of PGD-20 and CW-20),
smooth the score over the cell and its neighbours in the (log-spaced) grid, and take the best smoothed
cell. A cell wins on its neighbourhood, not on one lucky seed; the table keeps the raw scores beside it.
The choice is then checked over seeds (the suite's `amr_defaults_check` sweep trains the chosen cell on
the main table's other seeds): it is adopted if its mean score over the three seeds is at least that of
the current default over the same seeds; otherwise the defaults stay. The rule was written down before
the check ran. An adopted choice that is a tie (not a measured gain) becomes a named recipe
(configs/study/mnist5k/regmix_tied.yaml), not the method's default: `regmix` keeps the paper's form."""
from __future__ import annotations

import statistics
from typing import List, Optional

from ..study.stats import compare
from .claims import METRICS

SCORE = ("PGD-20", "CW-20")  # names of claims.METRICS
TIED_ADOPTED = ("adopted, as the named recipe configs/study/mnist5k/regmix_tied.yaml; the method's defaults "
                "stay the paper's form (alpha 1.0, beta 0.5, gamma 1.0): a tie does not change what its name means.")


def _score(entry) -> Optional[float]:
    """A run's score: the mean of its SCORE metrics (None until it has them all)."""
    parts = [METRICS[name][0](entry) for name in SCORE]
    return None if any(v is None for v in parts) else sum(parts) / len(parts)


def amr_grid(results: dict, sweep: str = "alpha_beta") -> Optional[dict]:
    """{alphas, betas, score[i][j] (alpha i, beta j; None where the cell has no evaluation yet)}."""
    runs = [e for e in results["runs"] if e["sweep"] == sweep]
    if not runs:
        return None
    alphas = sorted({float(e["options"]["alpha"]) for e in runs})
    betas = sorted({float(e["options"]["beta"]) for e in runs})
    seeds = [[[] for _ in betas] for _ in alphas]  # one seed per cell in the suite; several are averaged
    for e in runs:
        s = _score(e)
        if s is not None:
            seeds[alphas.index(float(e["options"]["alpha"]))][betas.index(float(e["options"]["beta"]))].append(s)
    score = [[statistics.fmean(cell) if cell else None for cell in row] for row in seeds]
    return {"alphas": alphas, "betas": betas, "score": score}


def smoothed(score: List[list]) -> List[list]:
    """Each cell's mean with its up/down/left/right neighbours (those measured)."""
    n, m = len(score), len(score[0])
    out = [[None] * m for _ in range(n)]
    for i in range(n):
        for j in range(m):
            if score[i][j] is None:
                continue
            near = [score[a][b] for a, b in ((i, j), (i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1))
                    if 0 <= a < n and 0 <= b < m and score[a][b] is not None]
            out[i][j] = sum(near) / len(near)
    return out


def choose_amr_weights(results: dict, sweep: str = "alpha_beta") -> Optional[dict]:
    """The chosen cell, or None until every cell of the grid is measured."""
    grid = amr_grid(results, sweep)
    if grid is None or any(v is None for row in grid["score"] for v in row):
        return None
    smooth = smoothed(grid["score"])
    i, j = max(((i, j) for i in range(len(grid["alphas"])) for j in range(len(grid["betas"]))),
               key=lambda ij: smooth[ij[0]][ij[1]])
    raw_best = max(((i, j) for i in range(len(grid["alphas"])) for j in range(len(grid["betas"]))),
                   key=lambda ij: grid["score"][ij[0]][ij[1]])
    main = [_score(e) for e in results["runs"] if e["method"] == "regmix" and not e["sweep"]]
    main = [s for s in main if s is not None]
    return {**grid, "smoothed": smooth, "alpha": grid["alphas"][i], "beta": grid["betas"][j],
            "chosen_raw": grid["score"][i][j], "chosen_smoothed": smooth[i][j],
            "raw_best": {"alpha": grid["alphas"][raw_best[0]], "beta": grid["betas"][raw_best[1]],
                         "score": grid["score"][raw_best[0]][raw_best[1]]},
            "seed_std": statistics.stdev(main) if len(main) > 1 else None, "seeds_main": len(main)}


def check_against_default(results: dict, grid_sweep: str = "alpha_beta",
                          check_sweep: str = "amr_defaults_check") -> Optional[dict]:
    """The chosen cell over seeds (its grid run and the check sweep's runs) against the main table's
    RegMix runs (the current default) on the same seeds: the score, APGD-CE+T where both have it."""
    c = choose_amr_weights(results, grid_sweep)
    if c is None:
        return None
    cell = [e for e in results["runs"] if e["sweep"] == grid_sweep
            and (float(e["options"]["alpha"]), float(e["options"]["beta"])) == (c["alpha"], c["beta"])]
    cell += [e for e in results["runs"] if e["sweep"] == check_sweep]
    default = [e for e in results["runs"] if e["method"] == "regmix" and not e["sweep"]]
    compared = compare_over_seeds(cell, default)
    return None if compared is None else {"alpha": c["alpha"], "beta": c["beta"], **compared}


def compare_over_seeds(candidate: list, default: list) -> Optional[dict]:
    """Two sets of runs on the seeds both have: the score and APGD-CE+T (where every seed has it),
    Welch's p and a bootstrap interval each; adopt = the candidate's mean score is at least the
    default's over all those seeds. None below two common seeds (one seed is no check)."""
    seeds = sorted({e["seed"] for e in candidate} & {e["seed"] for e in default})
    if len(seeds) < 2:
        return None

    def series(runs, get):
        by_seed = {e["seed"]: get(e) for e in runs}
        return [by_seed[s] for s in seeds if by_seed.get(s) is not None]

    apgd = METRICS["APGD-CE+APGD-T"][0]
    rows = {"score": compare(series(candidate, _score), series(default, _score))}
    a, b = series(candidate, apgd), series(default, apgd)
    if len(a) == len(b) == len(seeds):
        rows["APGD-CE+APGD-T"] = compare(a, b)
    adopt = rows["score"]["n_a"] == len(seeds) and rows["score"]["mean_a"] >= rows["score"]["mean_b"]
    return {"seeds": seeds, "rows": rows, "adopt": adopt}


def _fmt(v: float) -> str:
    return f"{v:g}"


def defaults_section(results: dict, sweep: str = "alpha_beta") -> List[str]:
    """Markdown: the rule, both grids and the choice (empty until the sweep is complete)."""
    c = choose_amr_weights(results, sweep)
    if c is None:
        return []
    head = "| alpha \\ beta | " + " | ".join(_fmt(b) for b in c["betas"]) + " |"
    rule = "|---" * (len(c["betas"]) + 1) + "|"

    def table(grid):
        rows = [head, rule]
        for i, a in enumerate(c["alphas"]):
            cells = []
            for j in range(len(c["betas"])):
                text = f"{grid[i][j]:.1f}"
                cells.append(f"**{text}**" if (c["alphas"][i], c["betas"][j]) == (c["alpha"], c["beta"]) else text)
            rows.append(f"| {_fmt(a)} | " + " | ".join(cells) + " |")
        return rows
    std = f"{c['seed_std']:.1f}" if c["seed_std"] is not None else "unknown"
    return ["## Choosing alpha and beta", "",
            "Rule (regmix/paper/defaults.py): score = mean of PGD-20 and CW-20 accuracy on the whole test split "
            f"(sweep `{sweep}`, one seed per cell, gamma at the recipe's); each cell's score averaged with its "
            "grid neighbours; the best averaged cell is chosen. One seed of RegMix varies by "
            f"{std} points of this score (std over the main table's {c['seeds_main']} seeds), so cells closer "
            "than that are not told apart by this grid.", "",
            "Raw score (percent):", "", *table(c["score"]), "",
            "Averaged with neighbours (the chosen cell in bold):", "", *table(c["smoothed"]), "",
            f"Chosen: alpha = {_fmt(c['alpha'])}, beta = {_fmt(c['beta'])} (raw {c['chosen_raw']:.1f}, averaged "
            f"{c['chosen_smoothed']:.1f}); the best raw cell is alpha = {_fmt(c['raw_best']['alpha'])}, beta = "
            f"{_fmt(c['raw_best']['beta'])} ({c['raw_best']['score']:.1f})."] + _check_lines(results, sweep)


def _check_lines(results, sweep) -> List[str]:
    chk = check_against_default(results, sweep)
    if chk is None:
        return ["", "Not yet checked over seeds (sweep `amr_defaults_check`)."]
    return ["", f"Check over seeds {chk['seeds']}: alpha = {_fmt(chk['alpha'])}, beta = {_fmt(chk['beta'])} against "
            "the current default (the main table's RegMix runs), mean over seeds, Welch's p, bootstrap 95% interval "
            "of the difference:", "", *_comparison(chk)]


def _comparison(chk: dict) -> List[str]:
    """compare_over_seeds' rows as a table, and the rule's decision."""
    lines = ["| metric | chosen | default | difference | p | interval | verdict |", "|---|---|---|---|---|---|---|"]
    for name, r in chk["rows"].items():
        lines.append(f"| {name} | {r['mean_a']:.1f} | {r['mean_b']:.1f} | {r['diff']:+.1f} | {r['p']:.2f} | "
                     f"[{r['ci'][0]:.1f}, {r['ci'][1]:.1f}] | {r['verdict']} |")
    return lines + ["", "Decision by the rule: " + (TIED_ADOPTED if chk["adopt"] else
                                                    "the defaults stay (the choice did not match the default over seeds).")]

# ---------------------------------------------------------------- gamma (AGR's weight)
# The rule, written on 2026-11-26 before the gamma sweep had a single run: the same score (mean of PGD-20
# and CW-20, whole test split) for each gamma of the sweep (one seed, alpha and beta at the recipe's,
# 1 and 0.5); each point averaged with its neighbours on the (log-spaced) line; the best averaged point
# is chosen. If it is the method's current gamma, the default stays and nothing more is run. Otherwise
# it is checked over the main table's seeds at the method's current alpha and beta (sweep
# `gamma_defaults_check`: alpha = beta = 16, the chosen gamma) against the same seeds at the current
# gamma (sweep `amr_defaults_check`: alpha = beta = 16, gamma 1), and adopted only if its mean score
# is at least theirs. The check runs at the current alpha and beta because that is the default a user
# gets; the grid runs at the recipe's, so the check also catches a choice that does not carry over.


def gamma_before(results: dict, baseline_sweep: str = "amr_defaults_check") -> Optional[float]:
    """The gamma the choice is measured against: that of the check's baseline runs (the method's default
    when the sweep ran), else that of the main table's RegMix runs. Not the code's current default,
    which the choice itself may have changed since."""
    for where in (lambda e: e["sweep"] == baseline_sweep, lambda e: not e["sweep"] and e["method"] == "regmix"):
        found = [float(e["options"]["gamma"]) for e in results["runs"] if where(e) and "gamma" in e.get("options", {})]
        if found:
            return found[0]
    return None


def choose_gamma(results: dict, sweep: str = "gamma") -> Optional[dict]:
    """{gammas, score, smoothed, gamma (chosen), default (gamma_before)}, or None until every point is
    measured."""
    runs = [e for e in results["runs"] if e["sweep"] == sweep]
    if not runs:
        return None
    gammas = sorted({float(e["options"]["gamma"]) for e in runs})
    points = [[_score(e) for e in runs if float(e["options"]["gamma"]) == g] for g in gammas]
    if any(not p or None in p for p in points):
        return None
    score = [statistics.fmean(p) for p in points]
    smooth = smoothed([score])[0]
    best = max(range(len(gammas)), key=lambda i: smooth[i])
    return {"gammas": gammas, "score": score, "smoothed": smooth, "gamma": gammas[best],
            "default": gamma_before(results)}


def check_gamma(results: dict, sweep: str = "gamma", check_sweep: str = "gamma_defaults_check",
                baseline_sweep: str = "amr_defaults_check") -> Optional[dict]:
    """The chosen gamma over seeds against the current gamma, both at the current alpha and beta (see
    the rule above); None until both sweeps have two common seeds."""
    c = choose_gamma(results, sweep)
    if c is None or c["gamma"] == c["default"]:
        return None
    candidate = [e for e in results["runs"] if e["sweep"] == check_sweep]
    baseline = [e for e in results["runs"] if e["sweep"] == baseline_sweep]
    compared = compare_over_seeds(candidate, baseline)
    return None if compared is None else {"gamma": c["gamma"], **compared}


def gamma_section(results: dict, sweep: str = "gamma") -> List[str]:
    """Markdown: the rule, the line of scores and the decision (empty until the sweep is complete)."""
    c = choose_gamma(results, sweep)
    if c is None:
        return []
    mark = lambda i, v: f"**{v:.1f}**" if c["gammas"][i] == c["gamma"] else f"{v:.1f}"  # noqa: E731
    lines = ["## Choosing gamma", "",
             f"Rule (regmix/paper/defaults.py, written before the sweep ran): the same score for each gamma of sweep "
             f"`{sweep}` (one seed, alpha and beta at the recipe's), averaged with its neighbours; the best averaged "
             "gamma is chosen; if it is not the current default it must match the current default over three seeds "
             "at the method's alpha and beta (sweep `gamma_defaults_check` against `amr_defaults_check`).", "",
             "| gamma | " + " | ".join(_fmt(g) for g in c["gammas"]) + " |", "|---" * (len(c["gammas"]) + 1) + "|",
             "| score | " + " | ".join(mark(i, v) for i, v in enumerate(c["score"])) + " |",
             "| averaged with neighbours | " + " | ".join(mark(i, v) for i, v in enumerate(c["smoothed"])) + " |", "",
             f"Chosen: gamma = {_fmt(c['gamma'])} (the default it is measured against: "
             f"{_fmt(c['default']) if c['default'] is not None else 'unknown'})."]
    if c["gamma"] == c["default"]:
        return lines + ["", "Decision by the rule: the default stays (the rule picks it; no check is needed)."]
    chk = check_gamma(results, sweep)
    if chk is None:
        return lines + ["", f"Not yet checked over seeds: sweep `gamma_defaults_check` (gamma = {_fmt(c['gamma'])}, "
                            "alpha = beta = the current defaults, the main table's seeds) has not run."]
    return lines + ["", f"Check over seeds {chk['seeds']} at the current alpha and beta: gamma = {_fmt(chk['gamma'])} "
                        f"against gamma = {_fmt(c['default'])}:", "", *_comparison(chk)]
