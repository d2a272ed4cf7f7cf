"""Streaming, bounded-memory summaries of one column, fed batch by batch."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from flotilla.monitoring._columns import categorical_column, numeric_column

SAMPLE_SIZE = 100_000
TOP_FREQUENCIES = 1000
QUANTILES = 1001  # probabilities 0, 0.001, ..., 1
_MAX_TRACKED = 100_000  # distinct categories kept exactly while streaming
_PRUNE_TO = 10_000


class NumericAccumulator:
    """Exact count, nulls, min, max, mean and std; a uniform sample for quantiles.

    The sample is a bottom-k sample: every value gets a random key and the ``sample_size``
    smallest keys are kept, which is a uniform sample without replacement of the whole
    stream, whatever the batch sizes (and two such samples merge by keeping the smallest keys).
    """

    def __init__(self, *, sample_size: int = SAMPLE_SIZE, seed: int = 0) -> None:
        self.sample_size = sample_size
        self.seed = seed
        self.rows = 0
        self.nulls = 0
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf
        self._keys: NDArray[np.float64] = np.empty(0)
        self._values: NDArray[np.float64] = np.empty(0)
        self._rng: np.random.Generator | None = None

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        col = numeric_column(column)
        self.rows += col.n_rows
        self.nulls += col.n_null
        x = col.values
        if x.size == 0:
            return
        b_n, b_mean = x.size, float(x.mean())
        b_m2 = float(((x - b_mean) ** 2).sum())
        total = self.n + b_n
        delta = b_mean - self.mean
        self.mean += delta * b_n / total  # Chan et al.'s parallel update
        self.m2 += b_m2 + delta * delta * self.n * b_n / total
        self.n = total
        self.min = min(self.min, float(x.min()))
        self.max = max(self.max, float(x.max()))
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        keys = np.concatenate([self._keys, self._rng.random(x.size)])
        values = np.concatenate([self._values, x])
        if keys.size > self.sample_size:
            keep = np.argpartition(keys, self.sample_size)[: self.sample_size]
            keys, values = keys[keep], values[keep]
        self._keys, self._values = keys, values

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "numeric",
            "count": self.rows,
            "null_count": self.nulls,
            "null_rate": self.nulls / self.rows if self.rows else 0.0,
            "non_null_count": self.n,
            "min": None,
            "max": None,
            "mean": None,
            "std": None,
            "quantiles": None,
            "histogram": None,
            "sample_size": int(self._values.size),
        }
        if self.n == 0:
            return out
        sample = np.sort(self._values)
        quantiles = np.quantile(sample, np.linspace(0.0, 1.0, QUANTILES))
        quantiles[0], quantiles[-1] = self.min, self.max
        edges = np.histogram_bin_edges(sample, bins="sturges", range=(self.min, self.max))
        counts = np.histogram(sample, edges)[0]
        out.update(
            min=self.min,
            max=self.max,
            mean=self.mean,
            std=math.sqrt(self.m2 / self.n),
            quantiles=[float(v) for v in quantiles],
            histogram={"edges": [float(e) for e in edges], "counts": counts.tolist()},
        )
        return out


class CategoricalAccumulator:
    """Counts per category (exact up to 100,000 distinct values), with nulls.

    Beyond 100,000 distinct categories the rarest are pruned to the top 10,000 and their
    counts move to ``other_count``: the top frequencies stay exact for any category that is
    frequent from the start, and approximate otherwise (documented in the profile).
    """

    def __init__(self) -> None:
        self.rows = 0
        self.nulls = 0
        self.counts: dict[str, int] = {}
        self.pruned = 0
        self.approximate = False

    def add(self, column: pa.Array | pa.ChunkedArray) -> None:
        col = categorical_column(column)
        self.rows += col.n_rows
        self.nulls += col.n_null
        for key, count in col.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        if len(self.counts) > _MAX_TRACKED:
            self.approximate = True
            ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
            self.pruned += sum(c for _, c in ranked[_PRUNE_TO:])
            self.counts = dict(ranked[:_PRUNE_TO])

    def summary(self) -> dict[str, Any]:
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        top = dict(ranked[:TOP_FREQUENCIES])
        other = sum(c for _, c in ranked[TOP_FREQUENCIES:]) + self.pruned
        return {
            "kind": "categorical",
            "count": self.rows,
            "null_count": self.nulls,
            "null_rate": self.nulls / self.rows if self.rows else 0.0,
            "non_null_count": self.rows - self.nulls,
            "n_categories": len(self.counts) if not self.approximate else None,
            "frequencies": top,
            "other_count": other,
            "approximate": self.approximate,
        }
