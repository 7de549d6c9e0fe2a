"""Substructure baseline: a gradient-boosted tree (scikit-learn) on jet observables.

Features (:data:`FEATURES`): soft-drop mass, plain mass, tau_1, the N-subjettiness ratios
tau_21 = tau_2 / tau_1 and tau_32 = tau_3 / tau_2, and the constituent multiplicity, all
computed at generation (:mod:`lhcml.jets.generation`). The classifier is scikit-learn's
:class:`~sklearn.ensemble.HistGradientBoostingClassifier`.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lhcml.errors import ConfigError, InputError
from lhcml.io.atomic import write_atomic

FEATURES: tuple[str, ...] = ("sdmass", "mass", "tau1", "tau21", "tau32", "nparticles")


def substructure_features(
    jets: dict[str, np.ndarray], features: Sequence[str] = FEATURES
) -> np.ndarray:
    """``(n, len(features))`` float64 matrix from per-jet columns (``jet_*``).

    Ratios with a zero denominator are 0.
    """

    def ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b > 0)

    table = {
        "sdmass": jets["jet_sdmass"],
        "mass": jets["jet_mass"],
        "tau1": jets["jet_tau1"],
        "tau21": ratio(jets["jet_tau2"], jets["jet_tau1"]),
        "tau32": ratio(jets["jet_tau3"], jets["jet_tau2"]),
        "nparticles": jets["jet_nparticles"],
        "pt": jets["jet_pt"],
    }
    unknown = [f for f in features if f not in table]
    if unknown:
        raise ConfigError(f"features: unknown {unknown}; choose from {sorted(table)}")
    return np.column_stack([np.asarray(table[f], dtype=np.float64) for f in features])


class SubstructureBDT:
    """Gradient-boosted trees on substructure observables.

    Args:
        features: names from :func:`substructure_features`.
        max_iter, learning_rate, max_leaf_nodes, l2_regularization: passed to
            ``HistGradientBoostingClassifier``.
        early_stopping: hold out 10% of the training jets to stop early.
        seed: ``random_state``.
    """

    def __init__(
        self,
        features: Sequence[str] = FEATURES,
        max_iter: int = 300,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        l2_regularization: float = 0.0,
        early_stopping: bool = True,
        seed: int = 42,
    ) -> None:
        from sklearn.ensemble import HistGradientBoostingClassifier

        self.features = tuple(features)
        substructure_features(
            {
                k: np.zeros(1)
                for k in (
                    "jet_sdmass",
                    "jet_mass",
                    "jet_tau1",
                    "jet_tau2",
                    "jet_tau3",
                    "jet_nparticles",
                    "jet_pt",
                )
            },
            self.features,
        )  # validates the names
        self.clf = HistGradientBoostingClassifier(
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=max_leaf_nodes,
            l2_regularization=l2_regularization,
            early_stopping=early_stopping,
            validation_fraction=0.1 if early_stopping else None,
            random_state=seed,
        )

    def fit(self, jets: dict[str, np.ndarray], labels: np.ndarray) -> SubstructureBDT:
        self.clf.fit(substructure_features(jets, self.features), labels)
        return self

    def predict_proba(self, jets: dict[str, np.ndarray]) -> np.ndarray:
        """``(n, n_classes)`` class probabilities."""
        return self.clf.predict_proba(substructure_features(jets, self.features))

    def save(self, path: str | Path) -> Path:
        """Pickle the fitted model atomically."""
        blob = pickle.dumps({"features": self.features, "clf": self.clf})
        return write_atomic(path, lambda p: p.write_bytes(blob))

    @classmethod
    def load(cls, path: str | Path) -> SubstructureBDT:
        """Load a model written by :meth:`save` (a pickle: only load files you trust)."""
        try:
            state: dict[str, Any] = pickle.loads(Path(path).read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError) as e:
            raise InputError(f"cannot read the BDT model: {e}", path=path) from e
        obj = cls.__new__(cls)
        obj.features = tuple(state["features"])
        obj.clf = state["clf"]
        return obj
