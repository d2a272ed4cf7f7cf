"""The quickstart's recommender: most popular items per segment, minus what the user owns.

A real python-flavor model: registered from this file with
``--flavor python --entry recommender:PopularityRecommender --params '{...}'``.
"""

from __future__ import annotations

from typing import Any


class PopularityRecommender:
    """Recommend the ``k`` most popular items of the user's segment.

    Args:
        popular: segment -> item ids, most popular first (``"*"`` is the global list).
        k: how many items to return.
    """

    def __init__(self, *, popular: dict[str, list[int]], k: int = 10) -> None:
        self.popular = popular
        self.k = k

    def predict(self, records: list[dict[str, Any]]) -> list[list[int]]:
        out: list[list[int]] = []
        fallback = self.popular.get("*", [])
        for rec in records:
            ranked = self.popular.get(str(rec.get("segment")), fallback)
            last = rec.get("last_item")
            out.append([i for i in ranked if i != last][: self.k])
        return out
