"""How the scheduler splits its time between reading prompts and decoding, while there is work of both kinds.

Reading a prompt chunk and decoding the generating sequences are separate ``llama_decode`` calls (see
``aicy.engine.scheduler``), so the two share the cores in turns. A long prompt read in one go would stall
every generating sequence; decoding first would starve the prompt. The balance below is time: prompt
chunks may use ``weight`` seconds for each second spent decoding, each step timed from the end of the one
before (a chunk at a long position costs several times one at the start, so counting tokens would not do).

With ``weight`` 0.6 a stream keeps about 1 / 1.6 of its tokens/s while a long prompt is read (a step of
its own, then 0.6 of that for prompts), and the prompt progresses at 0.6 / 1.6 of its speed alone for as
long as the stream runs. Nothing can give both more: the two are separate ``llama_decode`` calls on the
same cores (with one KV stream per sequence llama.cpp cannot put a prompt chunk and other sequences'
tokens in one ubatch), so what the stream keeps the prompt loses. 0.6 rather than 0.8 because the measured
share falls short of the nominal one: the stream's own steps get dearer as it grows. Measured on this
two-core machine under load (one thread, a 1,932-token prompt): stream kept 0.53×, prompt read in 2.6× its
time alone; with 0.7, 0.49× and 3.0×.

The balance starts at zero, prompt first, whenever both kinds of work appear: a new
request's prompt is read at once. Between two chunks there is always one decode step at least.
"""

from __future__ import annotations

from dataclasses import dataclass

PROMPT_WEIGHT = 0.6


@dataclass(slots=True)
class TimeShare:
    weight: float = PROMPT_WEIGHT
    balance: float = 0.0  # seconds prompts may still use; negative while they are ahead

    def prompt_turn(self) -> bool:
        return self.balance >= 0

    def read(self, seconds: float) -> None:
        self.balance -= seconds

    def decoded(self, seconds: float) -> None:
        """Decoding earns prompts time, but never more than one chunk's turn: a generating sequence gets a
        token between any two chunks, however cheap they are."""
        self.balance = min(0.0, self.balance + seconds * self.weight)

    def reset(self) -> None:
        """Only one kind of work is waiting: nothing is owed either way."""
        self.balance = 0.0
