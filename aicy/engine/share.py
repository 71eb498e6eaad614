"""How the scheduler splits its time between reading prompts and decoding, while there is work of both kinds.

Reading a prompt chunk and decoding the generating sequences are separate ``llama_decode`` calls (see
``aicy.engine.scheduler``), so the two share the cores in turns. A long prompt read in one go would stall
every generating sequence; decoding first would starve the prompt. The balance below is time: prompt
chunks may use ``weight`` seconds for each second spent decoding, measured as each call takes (a chunk at
a long position costs several times one at the start, so counting tokens would not do).

With ``weight`` 0.8 a stream keeps over half its tokens/s while a long prompt is read (a step of its own,
then 0.8 of that for prompts), and the prompt progresses at 0.8 / 1.8 of its speed alone for as long as
the stream runs. The balance starts at zero, prompt first, whenever both kinds of work appear: a new
request's prompt is read at once. Between two chunks there is always one decode step at least.
"""

from __future__ import annotations

from dataclasses import dataclass

PROMPT_WEIGHT = 0.8


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
