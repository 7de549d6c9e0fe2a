"""GNN track finding: the GNN4ITk / Exa.TrkX chain, one module per stage.

Each stage is a folder with its model(s) and ``train`` / ``infer`` / ``evaluate`` modules
that exchange files on disk, so any stage reruns alone:

==================================================  =========================================
``graph_construction/``                             ``module_map`` (numpy: build + apply,
                                                    TrackML module renumbering),
                                                    ``metric_learning`` (embedding MLP +
                                                    faiss radius / kNN graph); train / infer
                                                    / evaluate
``edge_classification/``                            ``interaction_network`` (PyG
                                                    ``MessagePassing``), ``fused`` (numba CPU
                                                    inference), ``widen`` (Net2WiderNet);
                                                    train / infer / evaluate, for the edge
                                                    filter too (``edge_filter``: doublet MLP)
``track_building/``                                 ``algorithms`` (components, junctions,
                                                    walkthrough, longest paths, stitching;
                                                    numba); infer / evaluate
``features``                                        node / edge features, truth edges,
                                                    :class:`~lhcml.gnn.features.EventGraph`
``files``, ``config``, ``runtime``                  what every stage shares: graph / model
                                                    files, the YAML config, threads and
                                                    trainers
``lightning``                                       thin LightningModules and graph datasets
``chain``                                           the whole chain from one config: every
                                                    stage in turn, export of a model set
``pipeline``                                        :class:`~lhcml.gnn.pipeline.GNNChain`:
                                                    the chain on one event in memory
``models/default``                                  the shipped model set and its metrics
==================================================  =========================================

Imports run one way: ``chain`` -> the stages' ``train`` / ``evaluate`` -> their ``infer``
-> ``files`` / ``config`` / ``runtime`` -> the models and ``features``; ``pipeline`` uses
the models, ``files`` and ``runtime``, and only ``chain``, :mod:`lhcml.reco` and the CLI
import it (``tests/test_architecture.py`` checks there is no circle).

CLI: ``lhcml gnn <stage> train|infer|evaluate`` and ``lhcml gnn chain train CONFIG``;
``lhcml reconstruct`` runs the shipped chain (``--method gnn``, the default).
"""

from __future__ import annotations
