"""The model's vocabulary: chat-prompt tokenisation, token pieces and end-of-generation tokens."""

from __future__ import annotations

import ctypes

import llama_cpp
from llama_cpp._internals import LlamaModel

_PIECE_BUFFER = 64


class Vocabulary:
    def __init__(self, model: LlamaModel) -> None:
        self._model = model
        self.pointer = model.vocab
        self.size = model.n_vocab()
        self.eog = frozenset(t for t in range(self.size) if llama_cpp.llama_vocab_is_eog(self.pointer, t))
        self._pieces: dict[int, bytes] = {}  # filled by the scheduler thread only
        self._shown: dict[int, bytes] = {}  # likewise

    def tokenize(self, text: str) -> list[int]:
        """Tokens of a rendered chat prompt: special tokens parsed, no BOS added (the template has it)."""
        return list(self._model.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def piece(self, token: int) -> bytes:
        """The bytes a generated token stands for (special tokens render as nothing, as in ``Llama``)."""
        found = self._pieces.get(token)
        if found is None:
            found = self._pieces[token] = self.token_bytes(token, special=False)
        return found

    def shown(self, token: int) -> bytes:
        """A token as log-probabilities list it among the likely ones: its piece, or, for a control token
        that renders as nothing (the end of a turn), its name."""
        found = self._shown.get(token)
        if found is None:
            found = self.piece(token) or self.token_bytes(token, special=True)
            self._shown[token] = found
        return found

    def token_bytes(self, token: int, special: bool) -> bytes:
        buffer = ctypes.create_string_buffer(_PIECE_BUFFER)
        size = llama_cpp.llama_token_to_piece(self.pointer, token, buffer, _PIECE_BUFFER, 0, special)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self.pointer, token, buffer, -size, 0, special)
        return buffer.raw[:size]

    def token_text(self, token: int) -> str:
        return self.token_bytes(token, special=True).decode("utf-8", errors="replace")
