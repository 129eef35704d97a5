"""The network trains deterministically, and its numpy twin (what scoring runs) computes
what the Flax module computes."""

from __future__ import annotations

import numpy as np
import pytest

from eqs_pipeline.core.settings import CostNetSettings
from eqs_pipeline.costmodel.weights import forward


@pytest.fixture(scope="module")
def net():
    """The network's module, imported by the tests that run (JAX: an import at collection
    would cost every test worker about 3 s)."""
    from eqs_pipeline.costmodel import net

    return net


def _data(n: int = 3000, width: int = 20, numeric: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, width)).astype(np.float32)
    x[:, numeric:] = rng.random((n, width - numeric)) < 0.3
    scales = np.abs(rng.normal(size=(n, 2))).astype(np.float32)
    # A known structure: the square-root term's multiplier e^(0.5 x0), plus noise.
    y = (np.exp(0.5 * x[:, 0]) * scales[:, 1] + 0.3 * rng.normal(size=n)).astype(np.float32)
    return x, scales, y


@pytest.mark.parametrize("hidden", [(), (8, 8)])
def test_numpy_forward_matches_the_flax_module(net, hidden: tuple[int, ...]) -> None:
    from flax import nnx

    x, scales, _ = _data(200)
    model = net.CostNet(x.shape[1], 12, CostNetSettings(hidden=hidden), 3)
    # Jitted: one compiled program instead of a compile per eager operation.
    location, log_scale = nnx.jit(lambda m, x, s: m(x, s))(model, x, scales)
    w = net._weights(model)
    np_location, np_log_scale = forward(w, x, scales)
    np.testing.assert_allclose(np_location, np.asarray(location), rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(np_log_scale, np.asarray(log_scale), rtol=2e-5, atol=2e-5)


def test_same_data_same_weights_and_training_learns(net) -> None:
    x, scales, y = _data()
    settings = CostNetSettings(steps=80, batch_size=512, seed=1)
    seen: list[tuple[int, int, float]] = []
    first = net.train(settings, 12, x, scales, y, progress=lambda *a: seen.append(a))
    second = net.train(settings, 12, x, scales, y)
    assert first.weights.arrays.keys() == second.weights.arrays.keys()
    for name, a in first.weights.arrays.items():
        np.testing.assert_array_equal(a, second.weights.arrays[name], err_msg=name)
    assert seen[-1][0] == 80 and len(seen) == 20
    # It learned the multiplier: the prediction tracks e^(0.5 x0) * sqrt_law far better than
    # the untrained start does.
    location, _ = forward(first.weights, x, scales)
    truth = np.exp(0.5 * x[:, 0]) * scales[:, 1]
    assert np.sqrt(np.mean((location - truth) ** 2)) < 0.3 * np.std(truth)
    other = net.train(CostNetSettings(steps=80, batch_size=512, seed=2), 12, x, scales, y)
    assert not np.array_equal(other.weights.arrays["linear"], first.weights.arrays["linear"])
