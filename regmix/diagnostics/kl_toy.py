"""AMR on a 3-class simplex: how alpha*KL(P||Q) + beta*KL(Q||P) moves P (the final adversarial
output) and Q (the initial one) under gradient flow.

P = softmax(u) and Q = softmax(v) are parametrised by logits, as a network moves them. The gradients
are analytic (numpy, float64); tests check them against autograd. With J_p = diag(p) - p p^T:

  d KL(P||Q)/du = J_p (log p - log q) = p * (l - <p, l>),  l = log p - log q
  d KL(P||Q)/dv = q - p
  d KL(Q||P)/du = p - q
  d KL(Q||P)/dv = q * (m - <q, m>),  m = log q - log p

So alpha pulls P along its own mode-seeking direction and drags Q by (q - p); beta does the mirror
image. Only r = alpha / (alpha + beta) decides where a flow ends; alpha + beta sets its speed.

What r changes (kl_weighting, drawn by viz.kl.plot_kl_weighting; numbers from the defaults):
- one output P fitted to a fixed two-peaked Q within a unimodal family (mode_seeking_trace): from
  r = 0 (mass-covering, P(true) 0.28, entropy 1.96 nats) to r = 1 (mode-seeking, P(true) 0.97,
  entropy 0.14). Smooth in r for the laplace family; a jump near r = 0.88 for the gaussian one.
- both outputs moving (meeting_trace): with gradients through both arguments (regmix's default) the
  meeting point barely depends on r (P's share of the way changes by at most 0.18 over r in [0, 1]);
  the flatter output moves more, because both terms push it harder (term_gradients). With the target
  side detached (losses.amr's detach_target) alpha moves only Q and beta only P, and r decides who
  moves: P's share goes from 1 at r = 0 to 0 at r = 1.
"""
from __future__ import annotations

import numpy as np

MOVES = ("both", "p", "q")


def softmax(z):
    z = np.asarray(z, dtype=float)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def logits_of(p):
    """Logits whose softmax is p (the centred log; p must be strictly positive)."""
    logp = np.log(np.asarray(p, dtype=float))
    return logp - logp.mean(-1, keepdims=True)


def kl(p, q):
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    return float((p * (np.log(p) - np.log(q))).sum())


def amr(u, v, alpha: float, beta: float) -> float:
    p, q = softmax(u), softmax(v)
    return alpha * kl(p, q) + beta * kl(q, p)


def amr_gradients(u, v, alpha: float, beta: float):
    """(d/du, d/dv) of alpha*KL(softmax(u)||softmax(v)) + beta*KL(softmax(v)||softmax(u))."""
    p, q = softmax(u), softmax(v)
    l = np.log(p) - np.log(q)
    m = -l
    gu = alpha * p * (l - (p * l).sum()) + beta * (p - q)
    gv = alpha * (q - p) + beta * q * (m - (q * m).sum())
    return gu, gv


MAX_LOGIT_STEP = 0.25   # no logit moves further than this in one step


def gradient_flow(p0, q0, alpha: float, beta: float, *, lr: float = 0.5, steps: int = 200,
                  move: str = "both") -> dict:
    """Gradient flow on the logits, integrated with a bounded, backtracking step. move: 'both'
    (gradients through both arguments, regmix's default), 'p' (Q a fixed target) or 'q' (P fixed).

    The step is lr / (alpha + beta): alpha + beta only sets the flow's speed, so the path and its end
    depend on alpha/(alpha+beta) alone, as they do for the exact flow. No logit moves further than
    MAX_LOGIT_STEP in a step, and a step that would raise the loss is halved until it does not:
    fixed steps at alpha = beta = 16 made P and Q zig-zag into a corner neither started near.

    Returns P, Q (steps+1, 3) and loss (steps+1,), the loss never increasing.
    """
    if move not in MOVES:
        raise ValueError(f"move: must be one of {', '.join(MOVES)}, got {move!r}")
    if alpha < 0 or beta < 0:
        raise ValueError(f"alpha, beta: must be >= 0, got {alpha}, {beta}")
    if lr <= 0:
        raise ValueError(f"lr: must be > 0, got {lr}")
    u, v = logits_of(p0), logits_of(q0)
    loss = amr(u, v, alpha, beta)
    ps, qs, losses = [softmax(u)], [softmax(v)], [loss]
    h = lr / (alpha + beta) if alpha + beta > 0 else 0.0
    for _ in range(steps):
        gu, gv = amr_gradients(u, v, alpha, beta)
        du = h * gu if move in ("both", "p") else np.zeros_like(u)
        dv = h * gv if move in ("both", "q") else np.zeros_like(v)
        largest = max(np.abs(du).max(), np.abs(dv).max())
        if largest > MAX_LOGIT_STEP:
            du, dv = du * (MAX_LOGIT_STEP / largest), dv * (MAX_LOGIT_STEP / largest)
        for _halving in range(30):
            new = amr(u - du, v - dv, alpha, beta)
            if new <= loss:
                break
            du, dv = du / 2, dv / 2
        else:  # no step lowers the loss (round-off at the minimum): stay
            du, dv, new = 0 * du, 0 * dv, loss
        u, v, loss = u - du, v - dv, new
        ps.append(softmax(u))
        qs.append(softmax(v))
        losses.append(loss)
    return {"P": np.array(ps), "Q": np.array(qs), "loss": np.array(losses)}


def detached_meeting_point(p0, q0, alpha: float, beta: float) -> np.ndarray:
    """Where P and Q meet with the target side of each term detached (alpha moves only Q, beta only
    P), in closed form: d/dt (alpha u + beta v) = 0 along that flow, and at the meeting point u = v
    (up to a constant), so they meet at softmax(r log p0 + (1 - r) log q0), r = alpha/(alpha+beta)."""
    r = weight_share(alpha, beta)
    if r is None:
        raise ValueError("alpha, beta: at least one must be > 0")
    return softmax(r * logits_of(p0) + (1 - r) * logits_of(q0))


def simplex_grid(resolution: int = 12, margin: float = 0.02) -> np.ndarray:
    """Points of the 3-simplex on a triangular lattice, kept `margin` away from the edges."""
    points = []
    for i in range(resolution + 1):
        for j in range(resolution + 1 - i):
            k = resolution - i - j
            points.append((i, j, k))
    p = np.array(points, dtype=float) / resolution
    return p * (1 - 3 * margin) + margin


def velocity_field(q, alpha: float, beta: float, *, resolution: int = 12) -> dict:
    """The velocity dP/dt = -J_p grad_u of P at lattice points of the simplex, with Q fixed at q:
    where the loss pushes P, in probability coordinates (each row sums to 0)."""
    ps = simplex_grid(resolution)
    vq = logits_of(q)
    vel = []
    for p in ps:
        gu, _ = amr_gradients(logits_of(p), vq, alpha, beta)
        jac = np.diag(p) - np.outer(p, p)
        vel.append(-jac @ gu)
    return {"P": ps, "velocity": np.array(vel), "q": np.asarray(q, dtype=float)}


def to_plane(p) -> np.ndarray:
    """Barycentric (.., 3) -> 2D points of an equilateral triangle with corners (0,0), (1,0),
    (1/2, sqrt(3)/2) for classes 0, 1, 2."""
    p = np.asarray(p, dtype=float)
    return np.stack([p[..., 1] + 0.5 * p[..., 2], np.sqrt(3) / 2 * p[..., 2]], -1)


def kl_toy_record(weights=((1.0, 0.0), (1.0, 0.5), (1.0, 1.0), (0.5, 1.0), (0.0, 1.0)),
                  p0=(0.7, 0.2, 0.1), q0=(0.2, 0.3, 0.5), *, lr: float = 0.5, steps: int = 200,
                  resolution: int = 12) -> tuple[dict, dict]:
    """Arrays and meta for viz: one trajectory pair per (alpha, beta) and each move mode, and the
    velocity field of P towards a fixed Q."""
    arrays, runs = {}, []
    for n, (alpha, beta) in enumerate(weights):
        for move in MOVES:
            flow = gradient_flow(p0, q0, alpha, beta, lr=lr, steps=steps, move=move)
            for key, value in flow.items():
                arrays[f"{key}_{n}_{move}"] = value
        field = velocity_field(q0, alpha, beta, resolution=resolution)
        arrays[f"field_{n}"] = field["velocity"]
        runs.append({"index": n, "alpha": alpha, "beta": beta,
                     "meeting_point": arrays[f"P_{n}_both"][-1].round(4).tolist()})
    arrays["field_points"] = simplex_grid(resolution)
    meta = {"p0": list(p0), "q0": list(q0), "lr": lr, "steps": steps, "moves": list(MOVES), "runs": runs}
    return arrays, meta


# ---------------------------------------------------------------------------------------------------
# What the weighting alpha : beta changes. Only the share r = alpha / (alpha + beta) matters for where
# the flows end (alpha + beta only sets the speed), so every trace below is a function of r.

FAMILIES = ("laplace", "gaussian")


def weight_share(alpha: float, beta: float):
    """r = alpha / (alpha + beta), the share of the AMR weight on KL(P||Q); None when both are 0."""
    if alpha < 0 or beta < 0:
        raise ValueError(f"alpha, beta: must be >= 0, got {alpha}, {beta}")
    total = alpha + beta
    return None if total == 0 else alpha / total


def _ratios(ratios, n: int = 41) -> np.ndarray:
    r = np.linspace(0.0, 1.0, n) if ratios is None else np.asarray(ratios, dtype=float).ravel()
    if r.size == 0 or np.any((r < 0) | (r > 1)) or np.any(~np.isfinite(r)):
        raise ValueError("ratios: must be values of alpha/(alpha+beta) in [0, 1]")
    return r


def _log_softmax(z):
    z = np.asarray(z, dtype=float)
    m = z.max(-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(-1, keepdims=True))


def _kl_rows(logp, logq):
    """KL(P||Q) along the last axis, from log-probabilities (0 log 0 = 0)."""
    return (np.exp(logp) * (logp - logq)).sum(-1)


def entropy(p) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(-1)


def two_peaked_target(classes: int = 10, peaks=(3, 6), weights=(0.55, 0.40)) -> np.ndarray:
    """An ambiguous output: weights[0] on the true class peaks[0], weights[1] on a confusable class
    peaks[1], the rest spread evenly over the other classes."""
    a, b = peaks
    if classes < 3 or not (0 <= a < classes and 0 <= b < classes) or a == b:
        raise ValueError(f"peaks: two different classes in 0..{classes - 1}, got {peaks}")
    rest = 1.0 - sum(weights)
    if min(weights) <= 0 or rest <= 0:
        raise ValueError(f"weights: two positive numbers summing to less than 1, got {weights}")
    p = np.full(classes, rest / (classes - 2))
    p[a], p[b] = weights
    return p


def unimodal_log_probs(centre, sharpness, classes: int, family: str = "laplace") -> np.ndarray:
    """log softmax(z) of the restricted family z_c = -sharpness * d(c, centre), with d = |c - centre|
    (laplace) or (c - centre)^2 / 2 (gaussian): one peak, at most, on classes laid out in a row.
    centre and sharpness broadcast; the class axis is appended last."""
    if family not in FAMILIES:
        raise ValueError(f"family: must be one of {', '.join(FAMILIES)}, got {family!r}")
    c = np.arange(classes, dtype=float)
    d = np.asarray(centre, dtype=float)[..., None] - c
    d = np.abs(d) if family == "laplace" else 0.5 * d ** 2
    return _log_softmax(-np.asarray(sharpness, dtype=float)[..., None] * d)


def _family_grid(target, family, centres_per_class: int, sharpness: int):
    classes = len(target)
    mu = np.linspace(-0.5, classes - 0.5, centres_per_class * classes + 1)  # holds every class exactly
    t = np.geomspace(1e-2, 30.0, sharpness)
    M, T = np.meshgrid(mu, t, indexing="ij")
    logq = unimodal_log_probs(M.ravel(), T.ravel(), classes, family)
    logp = np.log(target)
    return M.ravel(), T.ravel(), logq, _kl_rows(logq, logp), _kl_rows(logp[None], logq)


def mode_seeking_trace(target=None, ratios=None, *, family: str = "laplace", true_class: int | None = None,
                       centres_per_class: int = 50, sharpness: int = 400) -> dict:
    """Fit one output P from a restricted unimodal family (unimodal_log_probs) to a fixed output Q
    that it cannot match (two-peaked by default) by minimising r KL(P||Q) + (1 - r) KL(Q||P), for each
    r. The minimum is taken over a fixed grid of (centre, sharpness), so it is the global one on that
    grid: KL(P||Q) at the minimum cannot increase with r and KL(Q||P) cannot decrease (the tests hold
    the numbers to that).

    This is the case "P fitted, Q held fixed" (gradient_flow's move='p'); it is not regmix's
    detach_target option, which detaches the first argument of each term.

    Returns r, the target, q (len(r), C), centre, sharpness, p_true / p_other (the fitted mass on the
    target's largest and second-largest class), entropy (nats) and both KL directions."""
    target = two_peaked_target() if target is None else np.asarray(target, dtype=float)
    if target.ndim != 1 or len(target) < 3 or np.any(target <= 0) or abs(target.sum() - 1) > 1e-6:
        raise ValueError("target: a probability vector over at least 3 classes, every entry > 0")
    r = _ratios(ratios)
    order = np.argsort(-target, kind="stable")
    true_class = int(order[0]) if true_class is None else int(true_class)
    other = int(order[1] if order[0] == true_class else order[0])
    M, T, logq, reverse, forward = _family_grid(target, family, centres_per_class, sharpness)
    best = np.array([int(np.argmin(ri * reverse + (1 - ri) * forward)) for ri in r])
    q = np.exp(logq[best])
    return {"r": r, "target": target, "q": q, "centre": M[best], "sharpness": T[best],
            "p_true": q[:, true_class], "p_other": q[:, other], "entropy": entropy(q),
            "kl_pq": reverse[best], "kl_qp": forward[best], "true_class": true_class, "other_class": other,
            "family": family}


def _batched_gradients(u, v, a, b, detach_target: bool):
    """Rows of (d/du, d/dv) of a KL(P||Q) + b KL(Q||P), P = softmax(u), Q = softmax(v); with
    detach_target the first argument of each term is a constant (regmix's detach_target option), so
    a moves only Q and b only P."""
    logp, logq = _log_softmax(u), _log_softmax(v)
    p, q = np.exp(logp), np.exp(logq)
    if detach_target:
        return b * (p - q), a * (q - p)
    l = logp - logq
    gu = a * p * (l - (p * l).sum(-1, keepdims=True)) + b * (p - q)
    gv = a * (q - p) - b * q * (l - (q * l).sum(-1, keepdims=True))
    return gu, gv


def meeting_trace(p0, q0, ratios=None, *, detach_target: bool = False, lr: float = 0.1,
                  max_steps: int = 40000, tol: float = 1e-6) -> dict:
    """Both outputs move (mutual learning): from P = p0 (final) and Q = q0 (initial), gradient flow
    on the logits of r KL(P||Q) + (1 - r) KL(Q||P) until the two agree (total variation < tol),
    for every r at once. How far each travelled (total variation from its start to the meeting
    point) says who moved towards whom; share_p = travel_p / (travel_p + travel_q).

    Returns r, meeting (len(r), C), travel_p, travel_q, share_p, steps, converged, p0, q0."""
    p0, q0 = np.asarray(p0, dtype=float), np.asarray(q0, dtype=float)
    for name, x in (("p0", p0), ("q0", q0)):
        if x.ndim != 1 or len(x) < 2 or np.any(x <= 0) or abs(x.sum() - 1) > 1e-6:
            raise ValueError(f"{name}: a probability vector, every entry > 0")
    if p0.shape != q0.shape:
        raise ValueError(f"p0, q0: must have the same number of classes, got {len(p0)} and {len(q0)}")
    if lr <= 0 or max_steps < 1:
        raise ValueError(f"lr, max_steps: must be > 0, got {lr}, {max_steps}")
    r = _ratios(ratios)
    a, b = r[:, None], 1 - r[:, None]
    u = np.tile(logits_of(p0), (len(r), 1))
    v = np.tile(logits_of(q0), (len(r), 1))
    steps = 0
    for steps in range(1, max_steps + 1):
        gu, gv = _batched_gradients(u, v, a, b, detach_target)
        u, v = u - lr * gu, v - lr * gv
        if 0.5 * np.abs(softmax(u) - softmax(v)).sum(-1).max() < tol:
            break
    P, Q = softmax(u), softmax(v)
    gap = 0.5 * np.abs(P - Q).sum(-1)
    meeting = 0.5 * (P + Q)
    travel_p = 0.5 * np.abs(meeting - p0).sum(-1)
    travel_q = 0.5 * np.abs(meeting - q0).sum(-1)
    return {"r": r, "meeting": meeting, "travel_p": travel_p, "travel_q": travel_q,
            "share_p": travel_p / np.maximum(travel_p + travel_q, 1e-12), "steps": steps,
            "converged": bool(gap.max() < tol), "p0": p0, "q0": q0, "detach_target": detach_target}


def term_gradients(final, init) -> dict:
    """The logit-gradient norm (L2) each AMR direction puts on each output, at unit weight:
    {'KL(P||Q)': {'P': .., 'Q': ..}, 'KL(Q||P)': {...}} for P = final, Q = init (probability
    vectors). Written out from the closed forms of amr_gradients."""
    u, v = logits_of(final), logits_of(init)
    gu_a, gv_a = amr_gradients(u, v, 1.0, 0.0)
    gu_b, gv_b = amr_gradients(u, v, 0.0, 1.0)
    norm = lambda g: float(np.linalg.norm(g))  # noqa: E731
    return {"KL(P||Q)": {"P": norm(gu_a), "Q": norm(gv_a)}, "KL(Q||P)": {"P": norm(gu_b), "Q": norm(gv_b)}}


# Starting pairs (P = final, Q = initial) for the meeting-point view, on 3 classes so they can be
# drawn on the simplex; class 0 is the true class.
PAIRS = {
    "P confident, Q flat": ((0.90, 0.05, 0.05), (0.40, 0.30, 0.30)),
    "P flat, Q confident": ((0.40, 0.30, 0.30), (0.90, 0.05, 0.05)),
    "P two-peaked, Q confident": ((0.48, 0.47, 0.05), (0.90, 0.05, 0.05)),
    "P, Q confident, disagree": ((0.10, 0.85, 0.05), (0.85, 0.10, 0.05)),
}


def kl_weighting(ratios=None, *, target=None, family: str = "laplace", pairs=None) -> dict:
    """Everything the KL-weighting figure and the AMR explorer draw, as arrays: the mode-seeking
    fit (mode_seeking_trace) in `family` and, as 'fit_alt', in the other family (where the switch
    from covering to locking happens depends on the family: smooth for laplace, a jump near
    r = 0.88 for gaussian on the default target), the logit-gradient norms of each pair
    (term_gradients), and the meeting-point traces of each starting pair with gradients
    through both arguments ('both', regmix's default) and with the target side detached."""
    r = _ratios(ratios)
    pairs = PAIRS if pairs is None else dict(pairs)
    meetings = {name: {"both": meeting_trace(p0, q0, r), "detached": meeting_trace(p0, q0, r, detach_target=True)}
                for name, (p0, q0) in pairs.items()}
    gradients = {name: term_gradients(p0, q0) for name, (p0, q0) in pairs.items()}
    if family not in FAMILIES:
        raise ValueError(f"family: must be one of {', '.join(FAMILIES)}, got {family!r}")
    alt = next(f for f in FAMILIES if f != family)
    return {"r": r, "fit": mode_seeking_trace(target, r, family=family),
            "fit_alt": mode_seeking_trace(target, r, family=alt), "meetings": meetings, "gradients": gradients}
