"""Grouping speaker embeddings by voice, with the number of speakers found automatically.

Spectral clustering on a pruned cosine-affinity graph: the number of groups is where the
Laplacian's eigenvalues jump (eigengap), bounded by what the user allows; k-means on the
leading eigenvectors assigns them. Groups whose windows are on average as alike as one
speaker's are then merged (average linkage: CAM++ windows of one voice score about 0.4-0.8,
of two voices below 0.25 on the corpus), and tiny groups (a cough, a laugh) join their
nearest voice. Very long recordings
are clustered on an even sample of their windows and the rest assigned to the nearest group,
so the work and memory stay bounded (``MAX_AFFINITY`` windows squared); so are windows of
too little speech to tell a voice by, which join the nearest group afterwards.
"""

from __future__ import annotations

import numpy as np

MAX_AFFINITY = 2000  # windows in one affinity matrix (2000² float32 = 16 MB)
MERGE_LINKAGE = 0.3  # groups whose windows' mean cosine similarity reaches this are one voice
MIN_SHARE = 0.02  # a group with under 4 windows and under this share of them is absorbed


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)


def _kmeans(x: np.ndarray, k: int, iterations: int = 50) -> np.ndarray:
    """Lloyd's k-means from a deterministic farthest-point start."""
    centers = [x[0]]
    for _ in range(1, k):
        dist = np.min([((x - c) ** 2).sum(axis=1) for c in centers], axis=0)
        centers.append(x[int(np.argmax(dist))])
    c = np.array(centers)
    labels = np.zeros(len(x), dtype=int)
    for _ in range(iterations):
        new = np.argmin(((x[:, None, :] - c[None]) ** 2).sum(axis=2), axis=1)
        if _ and np.array_equal(new, labels):
            break
        labels = new
        c = np.array([x[labels == j].mean(axis=0) if np.any(labels == j) else c[j]
                      for j in range(k)])  # fmt: skip
    return labels


def _spectral(x: np.ndarray, low: int, high: int) -> np.ndarray:
    """Labels of unit embeddings ``x`` in ``low``..``high`` groups (count by eigengap)."""
    n = len(x)
    sim = x @ x.T
    keep = max(min(n - 1, 6), int(0.1 * n))  # each window's strongest neighbours
    threshold = -np.sort(-sim, axis=1)[:, keep - 1 : keep]
    affinity = np.where(sim >= threshold, np.maximum(sim, 0.0), 0.0)
    affinity = (affinity + affinity.T) / 2
    laplacian = np.diag(affinity.sum(axis=1)) - affinity
    values, vectors = np.linalg.eigh(laplacian)
    if low == high:
        k = low
    else:
        gaps = np.diff(values[: high + 1])
        k = int(np.argmax(gaps[low - 1 : high])) + low
    if k == 1:
        return np.zeros(n, dtype=int)
    return _kmeans(_normalize(vectors[:, :k]), k)


def _centroids(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _normalize(np.array([x[labels == j].mean(axis=0) for j in range(labels.max() + 1)]))


def _compact(labels: np.ndarray) -> np.ndarray:
    _, inverse = np.unique(labels, return_inverse=True)
    return inverse


def _merge(x: np.ndarray, labels: np.ndarray, low: int) -> np.ndarray:
    """Absorb tiny groups, then merge the closest pair while it sounds like one speaker."""
    labels = _compact(labels)
    while labels.max() + 1 > max(low, 1):
        sizes = np.bincount(labels)
        centers = _centroids(x, labels)
        small = int(np.argmin(sizes))
        if sizes[small] < min(4, MIN_SHARE * len(x)) and len(sizes) > 1:
            sim = x[labels == small] @ np.delete(centers, small, axis=0).T
            target = np.delete(np.arange(len(sizes)), small)[np.argmax(sim, axis=1)]
            labels[labels == small] = target
        else:
            k = len(sizes)
            onehot = np.eye(k)[labels]  # windows × groups
            sim = onehot.T @ (x @ x.T) @ onehot / np.outer(sizes, sizes)
            np.fill_diagonal(sim, -np.inf)
            a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
            if sim[a, b] < MERGE_LINKAGE:
                break
            labels[labels == b] = a
        labels = _compact(labels)
    return labels


def cluster(
    embeddings: np.ndarray, low: int, high: int, reliable: np.ndarray | None = None
) -> np.ndarray:
    """A group number for each embedding, ``low`` to ``high`` groups (fewer when there are
    fewer embeddings); groups are numbered in order of their first window. Where ``reliable``
    marks some embeddings (those of enough speech), the groups are found from those alone and
    the others join the nearest group."""
    n = len(embeddings)
    if n == 0:
        return np.zeros(0, dtype=int)
    x = _normalize(np.asarray(embeddings, dtype=np.float64))
    core = np.flatnonzero(reliable) if reliable is not None and reliable.any() else np.arange(n)
    chosen = core[:: -(-len(core) // MAX_AFFINITY)]
    sample = x[chosen]
    high = min(high, len(sample))
    low = min(low, high)
    if high <= 1:
        return np.zeros(n, dtype=int)
    found = _spectral(sample, low, high)
    if low != high:
        found = _merge(sample, found, low)
    labels = np.argmax(x @ _centroids(sample, found).T, axis=1)
    labels[chosen] = found
    order: dict[int, int] = {}
    for label in labels:
        order.setdefault(int(label), len(order))
    return np.array([order[int(label)] for label in labels], dtype=int)
