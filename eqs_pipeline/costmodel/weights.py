"""The trained expected-cost network as numpy arrays, and its forward pass in numpy.

`net.py` trains the network in JAX; scoring runs this forward pass instead, so the daily
steps never import JAX (2-3 s) and a model scores the same on any machine. `test_net.py`
checks that both passes agree. docs/MODEL.md gives the formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LOG_SD_RANGE = (-7.0, 4.0)  # log scale of the standardized target: keeps the NLL finite
LOG_COEF_RANGE = (-8.0, 4.0)  # log multipliers of the two textbook terms
LOG_NU_RANGE = (-3.0, 6.0)  # log(nu - 2): nu from 2.05 (heavy tails) to 405 (Gaussian)
CALIBRATION = "log_scale_calibration"  # added to every log scale (`train.calibrate`)


def nu_of(log_nu_minus_2: float | np.ndarray) -> float:
    """The Student-t degrees of freedom from the trained parameter."""
    return float(2.0 + np.exp(np.clip(log_nu_minus_2, *LOG_NU_RANGE)))


def combine(out: np.ndarray, scales: np.ndarray, xp=np) -> tuple[np.ndarray, np.ndarray]:
    """(location, log scale) from the network's four outputs (a, b, c, s) and the two
    textbook scales (half spread, square-root law): a + e^b sqrt_law + e^c half_spread, s."""
    location = (
        out[:, 0]
        + xp.exp(xp.clip(out[:, 1], *LOG_COEF_RANGE)) * scales[:, 1]
        + xp.exp(xp.clip(out[:, 2], *LOG_COEF_RANGE)) * scales[:, 0]
    )
    return location, xp.clip(out[:, 3], *LOG_SD_RANGE)


@dataclass(frozen=True)
class Weights:
    """The trained network as named numpy arrays (what the artifact stores)."""

    arrays: dict[str, np.ndarray]

    def finite(self) -> bool:
        return all(bool(np.isfinite(a).all()) for a in self.arrays.values())

    @property
    def nu(self) -> float:
        return nu_of(self.arrays["log_nu_minus_2"])


def _silu(z: np.ndarray) -> np.ndarray:
    return z / (1.0 + np.exp(-z))


# Rows per block of the forward pass: a block's temporaries stay in the CPU's cache (on 1M
# rows, 2.2x faster than one pass over all of them).
BLOCK = 16_384


def forward(w: Weights, x: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(location, log scale) of each row, in units of the target scale."""
    if len(x) > BLOCK:
        parts = [
            _forward(w, x[i : i + BLOCK], scales[i : i + BLOCK]) for i in range(0, len(x), BLOCK)
        ]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return _forward(w, x, scales)


def _forward(w: Weights, x: np.ndarray, scales: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = w.arrays
    x = x.astype(np.float32, copy=False)
    k, width = a["shape_w1"].shape
    # The shape functions' hidden units side by side, so that their output layer is one
    # matrix product (numpy's einsum over (n, k, h) is not BLAS: 3x slower on 1M rows).
    z = (x[:, :k, None] * a["shape_w1"][None] + a["shape_b1"][None]).reshape(len(x), k * width)
    out = _silu(z) @ a["shape_w2"].reshape(k * width, -1) + x @ a["linear"] + a["bias"]
    if "head_kernel" in a:
        h, i = x, 0
        while f"layer{i}_kernel" in a:
            h = _silu(h @ a[f"layer{i}_kernel"] + a[f"layer{i}_bias"])
            i += 1
        out = out + h @ a["head_kernel"] + a["head_bias"]
    location, log_scale = combine(out.astype(np.float64), scales.astype(np.float64))
    # The scale's calibration on dates the network did not learn from (`train.calibrate`).
    return location, log_scale + float(a.get(CALIBRATION, 0.0))
