"""Edge filter: a cheap per-edge MLP that cuts the constructed graph before the GNN.

Each edge is scored from its two hits' features and the doublet features, with no
message passing, so it costs one MLP evaluation per edge. Edges scoring below a loose
threshold (chosen to keep ~99.9 % of the target edges) are dropped, which shrinks the
graph the Interaction Network has to process several-fold.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from lhcml.gnn.features import EDGE_FEATURES, edge_features
from lhcml.gnn.mlp import Standardize, make_mlp


class EdgeFilter(nn.Module):
    r"""Edge classifier without message passing.

    Args:
        n_node_features (int): input node features.
        hidden (int, optional): hidden width. (default: :obj:`64`)
        n_layers (int, optional): linear layers. (default: :obj:`3`)
        layer_norm (bool, optional): LayerNorm between layers. (default: :obj:`True`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F)`, edge indices
          :math:`(2, |\mathcal{E}|)`
        - **output:** edge logits :math:`(|\mathcal{E}|,)`
    """

    def __init__(
        self,
        n_node_features: int = 4,
        hidden: int = 64,
        n_layers: int = 3,
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.node_norm = Standardize(n_node_features)
        self.edge_norm = Standardize(len(EDGE_FEATURES))
        self.mlp = make_mlp(
            2 * n_node_features + len(EDGE_FEATURES), hidden, 1, n_layers, layer_norm=layer_norm
        )

    def fit_normalisation(self, x: Tensor, edge_index: Tensor) -> None:
        """Fit the input standardisation on training nodes and edges."""
        self.node_norm.fit(x)
        self.edge_norm.fit(edge_features(x, edge_index))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Edge logits."""
        h = self.node_norm(x)
        e = self.edge_norm(edge_features(x, edge_index))
        feats = torch.cat([h[edge_index[0]], h[edge_index[1]], e], 1)
        return self.mlp(feats).squeeze(-1)

    def scores(self, x: Tensor, edge_index: Tensor, batch_size: int = 1_000_000) -> Tensor:
        """Sigmoid scores in batches of edges (bounded memory at inference)."""
        return batched_scores(self, x, edge_index, batch_size)


@torch.no_grad()
def batched_scores(
    model: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    edge_index: Tensor,
    batch_size: int = 1_000_000,
) -> Tensor:
    """Sigmoid of an edge model's logits, ``batch_size`` edges at a time."""
    out = [
        torch.sigmoid(model(x, edge_index[:, i : i + batch_size]))
        for i in range(0, edge_index.shape[1], batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0)
