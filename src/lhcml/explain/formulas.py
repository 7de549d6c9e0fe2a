"""Neurons as formulas: symbolic regression (gplearn) of a neuron's activation against the
physics variables of the row it fires for (a hit, a hit pair, a candidate, a jet).

The activation is standardised first (the formula predicts ``(a - mean) / std``, both
reported), and lengths should come in metres so that every variable is O(1): genetic
programming finds little when inputs span three orders of magnitude.

gplearn (genetic programming, pure Python) searches programs over ``add, sub, mul, div,
sqrt, log, abs, neg, sin, cos`` of the variables and constants; a parsimony penalty keeps
them short. The fitted program is reported with the variables' names, its R^2 on held-out
rows, and the Pearson correlation of the best single variable as a baseline (a formula that
beats no single variable explains nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lhcml.errors import InputError

FUNCTIONS: tuple[str, ...] = ("add", "sub", "mul", "div", "sqrt", "log", "abs", "neg", "sin", "cos")


@dataclass
class Formula:
    """A fitted formula of one neuron.

    Attributes:
        neuron: the neuron's name.
        expression: the program, with variable names.
        r2: R^2 on the held-out rows.
        best_variable: the variable most correlated with the activation, and ``|rho|``
            (``rho^2`` is the R^2 a linear function of it alone reaches: the baseline).
        mean, std: of the activation; the formula predicts ``(a - mean) / std``.
        program: the gplearn estimator (evaluate with :meth:`predict`).
    """

    neuron: str
    expression: str
    r2: float
    best_variable: tuple[str, float]
    variables: list[str]
    program: Any
    mean: float = 0.0
    std: float = 1.0

    def predict(self, physics: pd.DataFrame) -> np.ndarray:
        """The activation the formula gives for these rows (unstandardised)."""
        z = self.program.predict(physics[self.variables].to_numpy(np.float64))
        return self.mean + self.std * z

    def to_dict(self) -> dict[str, Any]:
        return {
            "neuron": self.neuron,
            "formula": self.expression,
            "r2": self.r2,
            "best_variable": self.best_variable[0],
            "best_variable_abs_corr": self.best_variable[1],
            "activation_mean": self.mean,
            "activation_std": self.std,
        }


def _readable(program: Any, names: list[str]) -> str:
    text = str(program._program)
    # gplearn names variables X0, X1, ...: longest index first so X1 does not eat X10.
    for i in sorted(range(len(names)), reverse=True):
        text = text.replace(f"X{i}", names[i])
    return text


def fit_formula(
    activation: np.ndarray,
    physics: pd.DataFrame,
    *,
    neuron: str = "neuron",
    generations: int = 15,
    population: int = 1000,
    max_samples: int = 4000,
    parsimony: float = 2e-3,
    seed: int = 0,
) -> Formula:
    """Fit one neuron's activation with symbolic regression.

    Args:
        activation: ``(n,)`` the neuron's values on the rows of ``physics``.
        physics: ``(n, variables)`` physics variables of the same rows.
        neuron: its name, for the report.
        generations, population, parsimony: gplearn's search budget and length penalty.
        max_samples: rows used (a random subset; a quarter of them held out for R^2).
        seed: gplearn's and the subset's seed.

    Raises:
        InputError: lengths differ, NaN, a constant activation or too few rows.
    """
    from gplearn.genetic import SymbolicRegressor

    a = np.asarray(activation, dtype=np.float64).reshape(-1)
    if len(a) != len(physics):
        raise InputError(f"{len(a)} activations for {len(physics)} rows of physics variables")
    if not np.isfinite(a).all():
        raise InputError(f"{neuron}: activation has NaN or infinite values")
    x = physics.to_numpy(np.float64)
    ok = np.isfinite(x).all(1)
    a, x = a[ok], x[ok]
    if len(a) < 20:
        raise InputError(f"{neuron}: {len(a)} rows with finite physics variables, need >= 20")
    if np.ptp(a) == 0:
        raise InputError(f"{neuron}: the activation is constant (a dead neuron), no formula")
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(a))[:max_samples]
    n_fit = int(0.75 * len(rows))
    fit, held = rows[:n_fit], rows[n_fit:]
    names = list(physics.columns)
    model = SymbolicRegressor(
        population_size=population,
        generations=generations,
        function_set=FUNCTIONS,
        parsimony_coefficient=parsimony,
        random_state=seed,
        n_jobs=1,
        verbose=0,
    )
    mean, std = float(a[fit].mean()), float(a[fit].std()) or 1.0
    model.fit(x[fit], (a[fit] - mean) / std)
    pred = mean + std * model.predict(x[held])
    resid = np.sum((a[held] - pred) ** 2)
    total = np.sum((a[held] - a[held].mean()) ** 2)
    r2 = float(1 - resid / total) if total > 0 else 0.0
    corr = [
        abs(float(np.corrcoef(x[fit, j], a[fit])[0, 1])) if np.ptp(x[fit, j]) > 0 else 0.0
        for j in range(x.shape[1])
    ]
    best = int(np.argmax(corr))
    return Formula(
        neuron, _readable(model, names), r2, (names[best], corr[best]), names, model, mean, std
    )
