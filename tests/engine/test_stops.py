from __future__ import annotations

import itertools

from hypothesis import assume, given
from hypothesis import strategies as st

from aicy.engine.stops import StopMatcher


def stream(stops: tuple[str, ...], chunks: list[str]) -> tuple[str, bool]:
    """Push every chunk (stopping at a hit, as the engine does); flush when no stop was hit."""
    matcher = StopMatcher(stops)
    out = ""
    for chunk in chunks:
        text, hit = matcher.push(chunk)
        out += text
        if hit:
            return out, True
    return out + matcher.flush(), False


def expected(text: str, stops: tuple[str, ...]) -> str:
    hits = [text.find(s) for s in stops if s and s in text]
    return text[: min(hits)] if hits else text


def test_no_stops_passes_text_through() -> None:
    matcher = StopMatcher(())
    assert matcher.push("abc") == ("abc", False)
    assert matcher.flush() == ""


def test_empty_stop_strings_are_ignored() -> None:
    assert StopMatcher(("",)).push("abc") == ("abc", False)


def test_stop_inside_one_chunk() -> None:
    assert StopMatcher(("END",)).push("helloENDworld") == ("hello", True)


def test_stop_split_across_chunks_is_held_back() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.push("helloE") == ("hello", False)
    assert matcher.push("N") == ("", False)
    assert matcher.push("Dmore") == ("", True)


def test_false_alarm_is_released() -> None:
    matcher = StopMatcher(("END",))
    assert matcher.push("hiEN") == ("hi", False)
    assert matcher.push("x") == ("ENx", False)


def test_flush_returns_held_text_once() -> None:
    matcher = StopMatcher(("</s>",))
    assert matcher.push("answer</") == ("answer", False)
    assert matcher.flush() == "</"
    assert matcher.flush() == ""


def test_earliest_of_several_stops_wins() -> None:
    assert StopMatcher(("zz", "b", "ab")).push("xxabzz") == ("xx", True)


def test_a_stop_that_completes_first_wins_over_a_longer_one_still_forming() -> None:
    # "b" completes while "abc" might still be forming: the stream stops at "b", as a generator must.
    assert stream(("abc", "b"), ["a", "b", "c"]) == ("a", True)
    assert stream(("abc", "b"), ["abc"]) == ("", True)


def _no_nesting(stops: tuple[str, ...]) -> bool:
    real = [s for s in stops if s]
    return not any(a != b and a in b for a in real for b in real)


@given(
    text=st.text(alphabet="abc", max_size=40),
    stops=st.lists(st.text(alphabet="abc", max_size=4), max_size=4).map(tuple),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=12),
)
def test_chunking_never_changes_the_result(text: str, stops: tuple[str, ...], cuts: list[int]) -> None:
    # With one stop nested inside another, the cut point may depend on when the inner one completes
    # (see the test above), so that case is excluded here.
    assume(_no_nesting(stops))
    points = sorted([0, len(text), *(min(c, len(text)) for c in cuts)])  # repeats give empty chunks
    chunks = [text[a:b] for a, b in itertools.pairwise(points)]
    out, hit = stream(stops, chunks)
    assert out == expected(text, stops)
    assert hit == any(s and s in text for s in stops)
