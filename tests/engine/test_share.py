"""The time share between prompt chunks and decode steps, with made-up durations."""

from __future__ import annotations

from aicy.engine.share import TimeShare


def turns(share: TimeShare, chunk_s: float, decode_s: float, steps: int) -> str:
    """What the scheduler would do for ``steps`` steps: P reads a chunk, D decodes."""
    done = ""
    for _ in range(steps):
        if share.prompt_turn():
            share.read(chunk_s)
            done += "P"
        else:
            share.decoded(decode_s)
            done += "D"
    return done


def test_prompts_go_first_then_take_weight_seconds_per_second_of_decoding() -> None:
    share = TimeShare(weight=0.5)
    assert turns(share, chunk_s=0.125, decode_s=0.0625, steps=10) == "PDDDDPDDDD"


def test_a_chunk_cheaper_than_its_share_is_followed_by_one_decode_at_least() -> None:
    assert turns(TimeShare(weight=0.8), chunk_s=0.001, decode_s=0.05, steps=6) == "PDPDPD"


def test_a_reset_forgets_what_either_side_was_owed() -> None:
    share = TimeShare()
    share.read(5.0)
    assert not share.prompt_turn()
    share.reset()
    assert share.prompt_turn()
