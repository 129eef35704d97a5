"""The expected-cost network (Flax nnx) and its training (optax); JAX is imported here.

The network predicts a distribution of an order's implementation shortfall, not a point: a
Student-t with location m(x), scale e^s(x) and nu degrees of freedom (one nu for all orders,
learned), where

    m(x) = a(x) + e^b(x) * sqrt_law + e^c(x) * half_spread

and sqrt_law = sigma * sqrt(size / ADV) and half_spread are the two textbook scales (in units
of the training target's standard deviation). a, b, c and s are the outputs of a neural
additive model (each numeric feature through its own small network, the one-hot instructions
through a linear map), plus an optional interaction MLP (`CostNetSettings.hidden`). So the
network learns log-multipliers of the textbook terms: how much more an urgent IS order or an
order at the open pays than the square-root law says, how much of the spread a DARK order
saves, how costs bend in a wide-spread regime. The Student-t keeps one order whose price ran
away from dragging the mean of its neighbours (on the designed test bed, a Gaussian fit lost
a point of grade agreement to the 0.06% of such orders).

Training minimizes the mean negative log-likelihood with AdamW for a fixed number of steps on
a cosine-decaying step size; batches are drawn by a seeded generator and the initial weights
from the seed, so the same data and settings give the same weights. The network is only used
to train: scoring runs its numpy twin (`weights.forward`) and never imports JAX.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.scipy.special import gammaln

from eqs_pipeline.core.settings import CostNetSettings
from eqs_pipeline.costmodel.weights import LOG_NU_RANGE, Weights, combine


def _param(values: np.ndarray) -> nnx.Param:
    """A float32 parameter, strongly typed: a weakly typed scalar came back from the first
    compiled chunk strongly typed, and the changed type compiled the loop twice more."""
    return nnx.Param(jnp.asarray(values, dtype=jnp.float32))


class CostNet(nnx.Module):
    """(a, b, c, s) as the sum of an additive part and an optional interaction MLP.

    The initial weights are drawn by numpy's seeded generator: drawn by JAX, each eager draw
    is compiled on its own (about 3 s before the first step; 2 s when compiled as one)."""

    def __init__(self, width: int, numeric: int, settings: CostNetSettings, seed: int) -> None:
        rng = np.random.default_rng(seed)
        h = settings.shape_width
        # Shape functions: numeric feature j -> silu(x_j w1_j + b1_j) . w2_j (4 outputs).
        self.shape_w1 = _param(rng.standard_normal((numeric, h)))
        self.shape_b1 = _param(np.zeros((numeric, h)))
        self.shape_w2 = _param(rng.standard_normal((numeric, h, 4)) / np.sqrt(h * numeric))
        self.linear = _param(rng.standard_normal((width, 4)) / np.sqrt(width) * 0.1)
        self.bias = _param(np.zeros(4))
        # The interaction MLP (LeCun normal kernels, zero biases).
        sizes = (width, *settings.hidden, 4) if settings.hidden else ()
        pairs = list(itertools.pairwise(sizes))
        self.kernels = nnx.List(
            [_param(rng.standard_normal((i, o)) / np.sqrt(i)) for i, o in pairs]
        )
        self.biases = nnx.List([_param(np.zeros(o)) for _, o in pairs])
        # log(nu - 2), one for all orders; starts at nu = 2 + e^2 (9.4).
        self.log_nu_minus_2 = _param(np.asarray(2.0))

    def nu(self) -> jax.Array:
        return 2.0 + jnp.exp(jnp.clip(self.log_nu_minus_2[...], *LOG_NU_RANGE))

    def __call__(self, x: jax.Array, scales: jax.Array) -> tuple[jax.Array, jax.Array]:
        k = self.shape_w1.shape[0]
        z = x[:, :k, None] * self.shape_w1[...][None] + self.shape_b1[...][None]
        out = jnp.einsum("nkh,kho->no", nnx.silu(z), self.shape_w2[...])
        out = out + x @ self.linear[...] + self.bias[...]
        if len(self.kernels):
            h = x
            for kernel, bias in zip(self.kernels[:-1], self.biases[:-1], strict=True):
                h = nnx.silu(h @ kernel[...] + bias[...])
            out = out + h @ self.kernels[-1][...] + self.biases[-1][...]
        return combine(out, scales, xp=jnp)


def _nll(model: CostNet, x: jax.Array, scales: jax.Array, y: jax.Array) -> jax.Array:
    """Mean Student-t negative log-likelihood, without the constant 0.5 log(pi)."""
    location, log_scale = model(x, scales)
    nu = model.nu()
    r2 = jnp.square((y - location) * jnp.exp(-log_scale))
    const = gammaln(nu / 2.0) - gammaln((nu + 1.0) / 2.0) + 0.5 * jnp.log(nu)
    return const + jnp.mean(log_scale + 0.5 * (nu + 1.0) * jnp.log1p(r2 / nu))


@partial(jax.jit, static_argnums=(0, 1))
def _run(graphdef, tx, params, opt_state, x, scales, y, live):
    """The optimizer steps over a chunk of batches (x: steps x batch x features, scales and y
    alike), on the model's parameters as a plain pytree; a step whose `live` is false (the
    padding of the last chunk) changes nothing. The batches are gathered before the call and
    every chunk has the same length, so the compiled program depends on the architecture, the
    optimizer (with its schedule, hence the step count) and the batch shape only, not on the
    number of training rows: one compilation serves every training with the same settings."""

    def loss(params, batch):
        return _nll(nnx.merge(graphdef, params), *batch)

    def step(carry, batch):
        params, opt_state = carry
        *data, on = batch
        value, grads = jax.value_and_grad(loss)(params, data)
        updates, new_state = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)

        def keep(new, old):
            return jnp.where(on, new, old)

        carry = (jax.tree.map(keep, new_params, params), jax.tree.map(keep, new_state, opt_state))
        return carry, value

    return jax.lax.scan(step, (params, opt_state), (x, scales, y, live))


@lru_cache(maxsize=8)
def _optimizer(
    learning_rate: float, steps: int, final_lr_fraction: float, weight_decay: float
) -> optax.GradientTransformation:
    """AdamW on a cosine-decaying step size; one object per setting, so that `_run`'s
    compiled program is reused by every training with the same optimizer (any seed)."""
    schedule = optax.cosine_decay_schedule(learning_rate, steps, alpha=final_lr_fraction)
    return optax.adamw(schedule, weight_decay=weight_decay)


def _weights(model: CostNet) -> Weights:
    out = {
        "shape_w1": model.shape_w1[...],
        "shape_b1": model.shape_b1[...],
        "shape_w2": model.shape_w2[...],
        "linear": model.linear[...],
        "bias": model.bias[...],
        "log_nu_minus_2": model.log_nu_minus_2[...],
    }
    if len(model.kernels):
        *hidden, head = zip(model.kernels, model.biases, strict=True)
        for i, (kernel, bias) in enumerate(hidden):
            out[f"layer{i}_kernel"], out[f"layer{i}_bias"] = kernel[...], bias[...]
        out["head_kernel"], out["head_bias"] = head[0][...], head[1][...]
    return Weights({k: np.array(v) for k, v in out.items()})


@dataclass(frozen=True)
class TrainResult:
    """The weights and the last steps' mean training loss (NLL per order, standardized)."""

    weights: Weights
    train_nll: float


def _batches(rng: np.random.Generator, n: int, batch: int, steps: int) -> np.ndarray:
    """(steps, batch) row indices: successive shuffles of all rows, cut into batches."""
    need = steps * batch
    perms = [rng.permutation(n) for _ in range(-(-need // n))]
    return np.concatenate(perms)[:need].reshape(steps, batch)


def train(
    settings: CostNetSettings,
    numeric: int,
    x: np.ndarray,
    scales: np.ndarray,
    y: np.ndarray,
    progress: Callable[[int, int, float], None] | None = None,
) -> TrainResult:
    """Fit the network on the rows (x: encoded features whose first `numeric` columns are the
    numeric ones, scales, y standardized); `progress(step, steps, loss)` after each of about 20
    chunks of steps."""
    x, scales, y = (np.asarray(a, dtype=np.float32) for a in (x, scales, y))
    model = CostNet(int(x.shape[1]), numeric, settings, settings.seed)
    n = int(x.shape[0])
    batches = _batches(
        np.random.default_rng(settings.seed), n, min(settings.batch_size, n), settings.steps
    )
    # The steps run inside one compiled loop (`lax.scan` over a chunk's batches) on the
    # parameters as a pytree: a jitted call per batch cost 25 ms of Python and graph traversal
    # per step against about 5 ms of arithmetic.
    graphdef, params = nnx.split(model, nnx.Param)
    tx = _optimizer(
        settings.learning_rate, settings.steps, settings.final_lr_fraction, settings.weight_decay
    )
    opt_state = tx.init(params)
    # About 20 chunks of equal length (progress after each); the last one padded.
    length = -(-settings.steps // min(20, settings.steps))
    chunks = -(-settings.steps // length)
    padded = np.zeros((chunks * length, batches.shape[1]), dtype=batches.dtype)
    padded[: settings.steps] = batches
    live = np.arange(chunks * length) < settings.steps
    losses = np.zeros(0)
    for k in range(chunks):
        rows = slice(k * length, (k + 1) * length)
        chunk = padded[rows]
        (params, opt_state), chunk_losses = _run(
            graphdef, tx, params, opt_state, x[chunk], scales[chunk], y[chunk], live[rows]
        )
        losses = np.asarray(chunk_losses)[live[rows]]
        if progress is not None:
            done = min(settings.steps, (k + 1) * length)
            progress(done, settings.steps, float(losses.mean()))
    model = nnx.merge(graphdef, params)
    return TrainResult(_weights(model), float(losses.mean()))
