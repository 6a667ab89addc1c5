"""A worker's warm models: loaded once, the least recently used dropped beyond capacity."""

from __future__ import annotations

import pytest

from models import manifest_load
from models.cache import PipelineCache
from models.loading import _PIPELINES, pipeline_load


def held(name: str) -> bool:
    """Whether this process still holds a loaded pipeline of manifest `name`."""
    manifest = manifest_load(name)
    return any(key[0] == manifest.manifest_hash for key in _PIPELINES)


def test_a_model_is_loaded_once_and_the_least_recently_used_is_dropped_beyond_capacity() -> None:
    big, tiny = manifest_load("embedded"), manifest_load("embedded-tiny")
    cache = PipelineCache(capacity=1)
    first = cache.get(big)
    assert cache.get(big) is first and (cache.loads, cache.evictions) == (1, 0)
    assert cache.names() == ["embedded"]
    cache.get(tiny)  # a batch for the other model: the first one is dropped before it loads
    assert (cache.loads, cache.evictions) == (2, 1) and cache.names() == ["embedded-tiny"]
    assert held("embedded-tiny") and not held("embedded")
    again = cache.get(big)
    assert again is not first and pipeline_load(big) is again  # loaded afresh, and shared


def test_with_room_for_two_the_one_used_longest_ago_goes() -> None:
    big, tiny = manifest_load("embedded"), manifest_load("embedded-tiny")
    cache = PipelineCache(capacity=2)
    cache.get(big)
    cache.get(tiny)
    cache.get(big)  # now tiny is the least recently used
    assert cache.names() == ["embedded-tiny", "embedded"] and cache.evictions == 0


def test_a_cache_holds_at_least_one_model() -> None:
    with pytest.raises(ValueError, match="capacity = 0"):
        PipelineCache(capacity=0)
