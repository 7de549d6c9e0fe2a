"""Track fitting: helix fit, Kalman filters (lhcml and ACTS), TrackFormer, candidate quality.

Modules (importing this package imports neither torch nor ACTS):

- :mod:`~lhcml.fitting.targets`: the perigee convention and true parameters from truth;
- :mod:`~lhcml.fitting.geometry`: hit resolutions, material, measurement frames;
- :mod:`~lhcml.fitting.candidates`: candidates (truth, a finder's output, corrupted);
- :mod:`~lhcml.fitting.helix`: vectorised Karimäki circle + s-z line fit;
- :mod:`~lhcml.fitting.kalman`: lhcml's Kalman filter (numba);
- :mod:`~lhcml.fitting.acts_kf`: the ACTS Kalman filter through pyacts, as reference;
- :mod:`~lhcml.fitting.dataset`, :mod:`~lhcml.fitting.trackformer`,
  :mod:`~lhcml.fitting.losses`, :mod:`~lhcml.fitting.train`: TrackFormer;
- :mod:`~lhcml.fitting.quality`: candidate / hit scores and the cleaning step;
- :mod:`~lhcml.fitting.evaluate`: resolutions, pulls, rates, plots, fitter comparison;
- :mod:`~lhcml.fitting.toys`: analytic toy tracks and events for tests.

The shipped model lives in ``lhcml/fitting/models/default`` (``lhcml fit --help``).
"""

from __future__ import annotations

from lhcml.fitting.candidates import Candidates, Corruption, TruthSelection, truth_candidates
from lhcml.fitting.helix import helix_fit, helix_fit_flat
from lhcml.fitting.kalman import KalmanResult, kalman_fit
from lhcml.fitting.targets import PARAMS, perigee_from_state, truth_targets

__all__ = [
    "PARAMS",
    "Candidates",
    "Corruption",
    "KalmanResult",
    "TruthSelection",
    "helix_fit",
    "helix_fit_flat",
    "kalman_fit",
    "perigee_from_state",
    "truth_candidates",
    "truth_targets",
]
