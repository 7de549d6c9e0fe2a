"""Jets: Pythia 8 + FastJet jet samples and jet taggers (Particle Transformer, PFN, BDT).

Stages (files in between, like the rest of lhcml)::

    lhcml jets generate ──► OUT/<process>-NNNNNN.parquet ──► lhcml jets train CONFIG ──► model dir
    (Pythia 8, detector        (weaver / ParT layout:           (Lightning; ParT,       weights.pt,
     response, anti-kT,         part_* lists, jet_*, label)       PFN or BDT)            metrics.json,
     truth matching)                                                                     roc.png
                                                                 lhcml jets evaluate ──► metrics.json

Modules:

- :mod:`~lhcml.jets.config`: :class:`GenerationConfig` (processes qcd / top / w / dark,
  selection, Pythia cards), :class:`DarkSectorConfig`, :class:`DetectorResponse`.
- :mod:`~lhcml.jets.generation`: Pythia events, detector response
  (:mod:`~lhcml.jets.detector`), FastJet clustering, truth matching, soft-drop mass and
  N-subjettiness.
- :mod:`~lhcml.jets.writer`: Parquet chunks (layout in its docstring), process pool,
  resuming.
- :mod:`~lhcml.jets.dataset`: Parquet -> padded tensors and masks, length-bucketed
  batches, splits by event.
- :mod:`~lhcml.jets.models`: :class:`~lhcml.jets.models.part.ParticleTransformer`,
  :class:`~lhcml.jets.models.pfn.ParticleFlowNetwork`,
  :class:`~lhcml.jets.models.substructure.SubstructureBDT`; the shipped model in
  :data:`~lhcml.jets.models.SHIPPED_MODEL_DIR`.
- :mod:`~lhcml.jets.training`: experiment configs (``experiments/jets/``), the Lightning
  module, ``train`` / ``evaluate``; :mod:`~lhcml.jets.evaluation`: metrics and ROC plots.

Importing this package imports neither Pythia, FastJet nor torch.
"""

from __future__ import annotations

from lhcml.jets.config import LABELS, DarkSectorConfig, DetectorResponse, GenerationConfig

__all__ = ["LABELS", "DarkSectorConfig", "DetectorResponse", "GenerationConfig"]
