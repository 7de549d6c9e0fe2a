"""Metric-learning graph construction (the Exa.TrkX embedding + radius graph).

An MLP maps each hit's features (r, phi, z, eta, and cluster shape where present) to a
point in a small embedding space, trained with a hinge loss so that consecutive hits of a
particle (truth edges) lie close together and other pairs, random and "hard" (nearest
neighbours in the current embedding that belong to different particles), lie farther than
a margin apart. The graph joins each hit to its neighbours within a radius (at most
``k_max`` of them) in the embedding, found with faiss (exact ``IndexFlatL2`` or, for big
events, the inverted-file ``IndexIVFFlat``), never a Python loop.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from lhcml.gnn.mlp import Standardize, make_mlp


class MetricLearning(nn.Module):
    r"""Hit embedding MLP.

    Args:
        n_node_features (int): input node features.
        hidden (int, optional): hidden width. (default: :obj:`128`)
        n_layers (int, optional): linear layers. (default: :obj:`4`)
        emb_dim (int, optional): embedding dimension. (default: :obj:`8`)
        normalize (bool, optional): project embeddings onto the unit sphere.
            (default: :obj:`False`)

    Shapes:
        - **input:** node features :math:`(|\mathcal{V}|, F)`
        - **output:** embeddings :math:`(|\mathcal{V}|, D)`
    """

    def __init__(
        self,
        n_node_features: int = 4,
        hidden: int = 128,
        n_layers: int = 4,
        emb_dim: int = 8,
        normalize: bool = False,
    ) -> None:
        super().__init__()
        self.normalize = normalize
        self.node_norm = Standardize(n_node_features)
        self.mlp = make_mlp(n_node_features, hidden, emb_dim, n_layers, layer_norm=True)

    def fit_normalisation(self, x: Tensor) -> None:
        """Fit the input standardisation on training hits."""
        self.node_norm.fit(x)

    def forward(self, x: Tensor) -> Tensor:
        """Embeddings of the hits."""
        e = self.mlp(self.node_norm(x))
        return nn.functional.normalize(e, dim=1) if self.normalize else e


def hinge_loss(
    emb: Tensor, pairs: Tensor, label: Tensor, margin: float, pos_weight: float = 1.0
) -> Tensor:
    """Hinge embedding loss on pairs of hits.

    ``d`` is the squared embedding distance of a pair: true pairs cost ``d``, false pairs
    ``max(0, margin^2 - d)``; the two halves are averaged separately and summed (true pairs
    weighted by ``pos_weight``), so the many negatives do not drown the positives.

    Args:
        emb: ``(N, D)`` embeddings.
        pairs: ``(2, P)`` hit rows.
        label: ``(P,)`` bool, true pairs.
        margin: the radius of the graph built afterwards.
        pos_weight: weight of the true-pair term.
    """
    d = ((emb[pairs[0]] - emb[pairs[1]]) ** 2).sum(dim=1)
    pos = d[label]
    neg = torch.relu(margin**2 - d[~label])
    loss = emb.new_zeros(())
    if pos.numel():
        loss = loss + pos_weight * pos.mean()
    if neg.numel():
        loss = loss + neg.mean()
    return loss


def _faiss_index(emb: np.ndarray, index: str, nprobe: int, min_ivf: int = 20_000) -> object:
    import faiss

    # faiss' OpenMP pool follows torch's thread setting (shared CPUs: no oversubscription).
    faiss.omp_set_num_threads(torch.get_num_threads())

    dim = emb.shape[1]
    if index == "flat" or len(emb) < min_ivf:
        idx = faiss.IndexFlatL2(dim)
    elif index == "ivf":
        nlist = int(np.clip(np.sqrt(len(emb)), 16, 4096))
        idx = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
        rng = np.random.default_rng(0)
        sample = emb[rng.choice(len(emb), min(len(emb), 40 * nlist), replace=False)]
        idx.train(sample)
        idx.nprobe = nprobe
    else:
        from lhcml.errors import ConfigError

        raise ConfigError(f"faiss index: '{index}' unknown; choose 'flat' or 'ivf'")
    idx.add(emb)
    return idx


def knn_pairs(
    emb: np.ndarray,
    k: int,
    *,
    r_max: float | None = None,
    index: str = "ivf",
    nprobe: int = 16,
    min_ivf: int = 20_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Each point's ``k`` nearest neighbours (itself excluded), optionally within ``r_max``.

    Args:
        emb: ``(N, D)`` float32 points.
        k: neighbours per point.
        r_max: keep neighbours closer than this.
        index: ``flat`` (exact) or ``ivf`` (approximate, fast on big events).
        nprobe: IVF cells visited per query.
        min_ivf: inputs with fewer points always use ``flat``.

    Returns:
        ``(pairs, dist2)``: ``(2, P)`` int64 (query, neighbour) and squared distances.
    """
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n = len(emb)
    if n < 2 or k < 1:
        return np.zeros((2, 0), np.int64), np.zeros(0, np.float32)
    idx = _faiss_index(emb, index, nprobe, min_ivf)
    kk = min(k + 1, n)
    dist, nbr = idx.search(emb, kk)  # type: ignore[attr-defined]
    valid = (nbr >= 0) & (nbr != np.arange(n)[:, None])
    # Itself is usually, but with ties not always, the first hit: keep k others per row.
    valid &= np.cumsum(valid, axis=1) <= k
    query = np.repeat(np.arange(n), kk)
    nbr, dist = nbr.ravel(), dist.ravel()
    keep = valid.ravel()
    if r_max is not None:
        keep &= dist < r_max**2
    return np.vstack([query[keep], nbr[keep]]).astype(np.int64), dist[keep]


def radius_graph(
    emb: np.ndarray,
    r: float,
    k_max: int,
    order_key: np.ndarray,
    *,
    index: str = "ivf",
    nprobe: int = 16,
) -> np.ndarray:
    """Undirected radius graph in the embedding, each edge once, directed inner to outer.

    Args:
        emb: ``(N, D)`` embeddings.
        r: radius.
        k_max: at most this many neighbours per hit.
        order_key: ``(N,)`` a hit's distance from the origin; edges point to the larger.
        index, nprobe: see :func:`knn_pairs`.

    Returns:
        ``(2, E)`` int64 edges, sorted.
    """
    pairs, _ = knn_pairs(emb, k_max, r_max=r, index=index, nprobe=nprobe)
    a, b = pairs
    swap = (order_key[a] > order_key[b]) | ((order_key[a] == order_key[b]) & (a > b))
    src = np.where(swap, b, a)
    dst = np.where(swap, a, b)
    n = len(emb)
    keys = np.unique(src * n + dst)
    return np.vstack([keys // n, keys % n]).astype(np.int64)


def training_pairs(
    emb: np.ndarray,
    truth_edge_index: np.ndarray,
    truth_weight: np.ndarray,
    particle_id: np.ndarray,
    *,
    n_random: int,
    k_hard: int,
    r_hard: float,
    n_hard_queries: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs for one hinge-loss step: truth edges, random pairs and hard negatives.

    Args:
        emb: current embeddings (for the hard negatives).
        truth_edge_index: ``(2, T)`` truth edges.
        truth_weight: ``(T,)`` bool, the truth edges used as positives (target particles).
        particle_id: ``(N,)`` particle of each hit (0 noise).
        n_random: random pairs.
        k_hard, r_hard: neighbours within ``r_hard`` of ``n_hard_queries`` random hits in
            the current embedding.
        rng: random generator.

    Returns:
        ``(pairs, label)``: ``(2, P)`` rows and ``(P,)`` bool (same particle, not noise).
    """
    n = len(particle_id)
    pos = truth_edge_index[:, truth_weight]
    rand = rng.integers(0, n, (2, n_random))
    parts = [pos, rand]
    if k_hard > 0 and n_hard_queries > 0:
        q = rng.choice(n, min(n, n_hard_queries), replace=False)
        import faiss

        faiss.omp_set_num_threads(torch.get_num_threads())
        idx = faiss.IndexFlatL2(emb.shape[1])
        idx.add(np.ascontiguousarray(emb, dtype=np.float32))
        dist, nbr = idx.search(np.ascontiguousarray(emb[q], dtype=np.float32), k_hard + 1)
        qq = np.repeat(q, k_hard + 1)
        nbr, dist = nbr.ravel(), dist.ravel()
        keep = (nbr >= 0) & (nbr != qq) & (dist < r_hard**2)
        parts.append(np.vstack([qq[keep], nbr[keep]]))
    pairs = np.concatenate(parts, axis=1).astype(np.int64)
    pairs = pairs[:, pairs[0] != pairs[1]]
    label = (particle_id[pairs[0]] == particle_id[pairs[1]]) & (particle_id[pairs[0]] != 0)
    return pairs, label


def embed(
    model: MetricLearning, x: np.ndarray, batch_size: int = 200_000, device: str = "cpu"
) -> np.ndarray:
    """Embeddings of all hits (no gradient; the model runs on ``device``), float32 numpy."""
    model.eval()
    with torch.no_grad():
        t = torch.from_numpy(x)
        out = [model(t[i : i + batch_size].to(device)).cpu() for i in range(0, len(t), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
