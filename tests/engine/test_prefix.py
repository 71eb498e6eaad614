"""Which slot's cells a new prompt starts from."""

from __future__ import annotations

from aicy.engine.prefix import COPY_WORTH_TOKENS, PrefixCache, Reuse, common_prefix


def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2


def test_the_slot_s_own_cells_are_kept_up_to_the_last_prompt_token() -> None:
    cache = PrefixCache(2)
    cache.held(0).extend([1, 2, 3, 4, 5])
    assert cache.plan(0, [1, 2, 3, 9]) == Reuse(3)
    assert cache.plan(0, [1, 2, 3]) == Reuse(2)  # the whole prompt is held: its last token is read again
    assert cache.plan(1, [7, 8]) == Reuse(0)


def test_another_slot_is_copied_only_when_it_saves_enough() -> None:
    long = list(range(100, 100 + COPY_WORTH_TOKENS + 10))
    cache = PrefixCache(3)
    cache.held(2).extend(long)
    assert cache.plan(0, [*long, 1]) == Reuse(len(long), source=2)
    cache.held(0).extend(long[:20])
    assert cache.plan(0, [*long, 1]) == Reuse(20)  # 22 more tokens would not pay for the copy
    cache.apply(1, Reuse(len(long), source=2))
    assert cache.held(1) == long
    cache.clear(2)
    assert cache.held(2) == []


def test_disabled_reuses_nothing() -> None:
    cache = PrefixCache(1, enabled=False)
    cache.held(0).extend([1, 2, 3])
    assert cache.plan(0, [1, 2, 3, 4]) == Reuse(0)
