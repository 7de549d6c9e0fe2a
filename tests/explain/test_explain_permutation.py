"""Permutation importance recovers what a synthetic model uses; neurons by hooks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from lhcml.errors import InputError
from lhcml.explain import channel_importance, permutation_importance
from lhcml.explain.formulas import fit_formula
from lhcml.explain.permutation import capture, neuron_modules


def linear_task(n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 3))
    return x, 3.0 * x[:, 0] + 0.5 * x[:, 1]  # x2 is not used


def test_input_importance_ranks_the_variables_the_model_uses() -> None:
    x, y = linear_task()

    def score(table: np.ndarray) -> float:  # minus the MSE of the true model
        return -float(np.mean((3.0 * table[:, 0] + 0.5 * table[:, 1] - y) ** 2))

    imp = permutation_importance(score, x, ["a", "b", "c"], metric="-mse", repeats=5)
    assert imp.baseline == 0.0
    assert list(imp.ranking()) == [0, 1, 2]
    # Shuffling x0 costs 2 var(3 x0) = 18 in MSE, x1 2 * 0.25; x2 nothing, exactly.
    assert imp.mean[0] == pytest.approx(18.0, rel=0.1)
    assert imp.mean[1] == pytest.approx(0.5, rel=0.1)
    assert imp.mean[2] == 0.0 and imp.std[2] == 0.0
    assert imp.std[0] > 0 and len(imp.to_dict()["items"]) == 3
    again = permutation_importance(score, x, ["a", "b", "c"], repeats=5)
    np.testing.assert_array_equal(again.mean, imp.mean)  # fixed seeds


def one_neuron_net() -> nn.Sequential:
    """Hidden unit 1 alone carries the output (units 0 and 2 have zero output weight)."""
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0, 0], [3.0, 0.5, 0], [0, 0, 1.0]]))
        net[0].bias.fill_(5.0)  # ReLU stays linear on these inputs
        net[2].weight.copy_(torch.tensor([[0.0, 1.0, 0.0]]))
        net[2].bias.zero_()
    return net


def test_neuron_importance_finds_the_one_neuron_that_matters() -> None:
    x, y = linear_task()
    net = one_neuron_net()
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)

    def score() -> float:
        with torch.no_grad():
            return -float(torch.mean((net(xt)[:, 0] - 5.0 - yt) ** 2))

    assert neuron_modules(net, score) == ["0", "2"]
    imp = channel_importance(score, net, "0", repeats=3)
    assert imp.names == ["0[0]", "0[1]", "0[2]"]
    assert imp.mean[1] > 10 and imp.mean[0] == 0 and imp.mean[2] == 0
    # A module's input: channel 0 of the first layer's input is the variable x0.
    inputs = channel_importance(score, net, "0:in", names=["a", "b", "c"], repeats=3)
    assert list(inputs.ranking()) == [0, 1, 2] and inputs.mean[2] == 0
    acts = capture(score, net, ["0", "2:in"])
    assert acts["0"].shape == (3000, 3) and acts["2:in"].shape == (3000, 3)
    # Hooks are removed afterwards: the model is unchanged.
    assert score() == pytest.approx(imp.baseline)


def test_unknown_module_and_mismatched_names_are_clear_errors() -> None:
    net = one_neuron_net()
    with pytest.raises(InputError, match="module 'conv9' not in Sequential"):
        channel_importance(lambda: 0.0, net, "conv9")
    with pytest.raises(InputError, match="2 variable names for a table of shape"):
        permutation_importance(lambda t: 0.0, np.zeros((5, 3)), ["a", "b"])
    with pytest.raises(InputError, match="repeats = 0"):
        permutation_importance(lambda t: 0.0, np.zeros((5, 1)), ["a"], repeats=0)


def test_a_formula_recovers_a_known_neuron() -> None:
    rng = np.random.default_rng(1)
    physics = pd.DataFrame({"r": rng.uniform(0.03, 1.0, 3000), "z": rng.uniform(-1, 1, 3000)})
    act = 2.0 * physics["r"].to_numpy() * physics["z"].to_numpy() + 0.5
    f = fit_formula(act, physics, neuron="n", generations=10, population=500)
    assert f.r2 > 0.95, f.expression
    assert "r" in f.expression and "z" in f.expression
    assert f.predict(physics) == pytest.approx(act, abs=0.2)
    with pytest.raises(InputError, match="constant"):
        fit_formula(np.ones(3000), physics)
    with pytest.raises(InputError, match="2999 activations for 3000 rows"):
        fit_formula(act[1:], physics)
