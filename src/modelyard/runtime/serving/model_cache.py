"""The loaded models of one multi-model worker: least recently used out first, under a bound.

Each entry has a size in bytes (what loading it cost, see :mod:`.multimodel`). The cache keeps
the sum of sizes within ``bound`` by evicting the least recently used entries, except that the
entry just added always stays: a model larger than the whole bound is still served, alone.
Not thread-safe: a worker serves one request at a time.

>>> cache = ModelCache(bound=100)
>>> cache.put("a", "model a", 60)
[]
>>> cache.put("b", "model b", 60)  # 120 > 100: the least recently used goes
['a']
>>> cache.get("a") is None, cache.get("b")
(True, 'model b')
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclasses.dataclass
class CacheStats:
    """Counters since the worker started (SageMaker's ModelCacheHit, and loads/evictions)."""

    hits: int = 0
    misses: int = 0
    evictions: int = 0


class ModelCache(Generic[V]):
    """Loaded models by name with an LRU memory bound; ``unload`` is called for each one
    that leaves (evicted or removed), after it left."""

    def __init__(self, bound: int, unload: Callable[[str, V], None] | None = None) -> None:
        if bound < 0:
            raise ValueError(f"the bound must not be negative, got {bound}")
        self.bound = bound
        self.unload = unload
        self.stats = CacheStats()
        self._entries: collections.OrderedDict[str, tuple[V, int]] = collections.OrderedDict()
        self._total = 0

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def total(self) -> int:
        """The sum of the sizes of the entries."""
        return self._total

    def sizes(self) -> dict[str, int]:
        """Name → size, least recently used first."""
        return {name: size for name, (_, size) in self._entries.items()}

    def peek(self, name: str) -> V | None:
        """The entry without marking it used or counting a hit."""
        entry = self._entries.get(name)
        return None if entry is None else entry[0]

    def get(self, name: str) -> V | None:
        """The entry, now the most recently used (a hit), or None (a miss)."""
        entry = self._entries.get(name)
        if entry is None:
            self.stats.misses += 1
            return None
        self._entries.move_to_end(name)
        self.stats.hits += 1
        return entry[0]

    def make_room(self, size: int) -> list[str]:
        """Evict until ``size`` more bytes fit (or nothing is left); the evicted names."""
        evicted = []
        while self._entries and self._total + size > self.bound:
            evicted.append(self._evict_oldest())
        return evicted

    def put(self, name: str, value: V, size: int) -> list[str]:
        """Add (or replace) ``name`` as the most recently used; evict others until the total
        is within the bound. The evicted names, least recently used first."""
        if size < 0:
            raise ValueError(f"a size must not be negative, got {size}")
        self.remove(name)
        self._entries[name] = (value, size)
        self._total += size
        evicted = []
        while self._total > self.bound and len(self._entries) > 1:
            evicted.append(self._evict_oldest())
        return evicted

    def remove(self, name: str) -> bool:
        """Drop ``name`` (calling ``unload``); whether it was there."""
        entry = self._entries.pop(name, None)
        if entry is None:
            return False
        self._total -= entry[1]
        if self.unload is not None:
            self.unload(name, entry[0])
        return True

    def _evict_oldest(self) -> str:
        name = next(iter(self._entries))
        self.remove(name)
        self.stats.evictions += 1
        return name
