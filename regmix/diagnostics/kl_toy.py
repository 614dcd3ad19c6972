"""AMR on a 3-class simplex: how alpha*KL(P||Q) + beta*KL(Q||P) moves P (the final adversarial
output) and Q (the initial one) under gradient flow.

P = softmax(u) and Q = softmax(v) are parametrised by logits, as a network moves them. The gradients
are analytic (numpy, float64); tests check them against autograd. With J_p = diag(p) - p p^T:

  d KL(P||Q)/du = J_p (log p - log q) = p * (l - <p, l>),  l = log p - log q
  d KL(P||Q)/dv = q - p
  d KL(Q||P)/du = p - q
  d KL(Q||P)/dv = q * (m - <q, m>),  m = log q - log p

So alpha pulls P along its own mode-seeking direction and drags Q by (q - p); beta does the mirror
image. With both arguments free the two meet at a point whose position depends on alpha : beta.
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


def gradient_flow(p0, q0, alpha: float, beta: float, *, lr: float = 0.5, steps: int = 200,
                  move: str = "both") -> dict:
    """Explicit Euler steps of the flow on the logits. move: 'both' (gradients through both
    arguments, regmix's default), 'p' (Q a fixed target) or 'q' (P fixed).

    Returns P, Q (steps+1, 3) and loss (steps+1,).
    """
    if move not in MOVES:
        raise ValueError(f"move: must be one of {', '.join(MOVES)}, got {move!r}")
    if alpha < 0 or beta < 0:
        raise ValueError(f"alpha, beta: must be >= 0, got {alpha}, {beta}")
    u, v = logits_of(p0), logits_of(q0)
    ps, qs, losses = [softmax(u)], [softmax(v)], [amr(u, v, alpha, beta)]
    for _ in range(steps):
        gu, gv = amr_gradients(u, v, alpha, beta)
        if move in ("both", "p"):
            u = u - lr * gu
        if move in ("both", "q"):
            v = v - lr * gv
        ps.append(softmax(u))
        qs.append(softmax(v))
        losses.append(amr(u, v, alpha, beta))
    return {"P": np.array(ps), "Q": np.array(qs), "loss": np.array(losses)}


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
