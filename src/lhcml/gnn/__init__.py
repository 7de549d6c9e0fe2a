"""GNN track finding: the GNN4ITk / Exa.TrkX chain, one module per stage.

=============================================  ============================================
``features``                                   node / edge features, truth edges, labels,
                                               :class:`~lhcml.gnn.features.EventGraph`
``graph_construction/module_map``              module map (numpy): build + apply, TrackML
                                               module renumbering
``graph_construction/metric_learning``         embedding MLP + faiss radius / kNN graph
``edge_filter``                                doublet MLP that shrinks graphs (optional)
``edge_classification/interaction_network``    Interaction Network (PyG ``MessagePassing``)
``track_building``                             connected components, junction resolution,
                                               walkthrough, longest paths (numba)
``lightning``                                  thin LightningModules and graph datasets
``stages``                                     train / infer / evaluate of every stage on
                                               files; the whole chain from one config
``pipeline``                                   :class:`~lhcml.gnn.pipeline.GNNChain`: the
                                               chain on one event in memory
``models/default``                             the shipped model set and its metrics
=============================================  ============================================

CLI: ``lhcml gnn <stage> train|infer|evaluate`` and ``lhcml gnn chain train CONFIG``;
``lhcml reconstruct`` runs the shipped chain (``--method gnn``, the default).
"""

from __future__ import annotations
