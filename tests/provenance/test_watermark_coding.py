"""The watermark's payload code: the block Viterbi decoder finds what a step-at-a-time one does."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from provenance.watermark_coding import CODED_BITS, GENERATORS, MEMORY, PAYLOAD_BITS, conv_encode, viterbi


def _parity(value: int) -> int:
    return bin(value).count("1") & 1


def viterbi_stepwise(soft: npt.NDArray[np.float32]) -> list[int]:
    """The textbook decoder, one trellis step at a time in plain Python: each state keeps the
    better of its two paths (the lower predecessor on a tie), traced back from state 0."""
    states = 1 << MEMORY
    path = [0.0] + [-np.inf] * (states - 1)
    choices = []
    for step in soft.reshape(-1, len(GENERATORS)).tolist():
        best, chosen = [], []
        for state in range(states):
            scores = []
            for which in range(2):
                predecessor = (state >> 1) | (which << (MEMORY - 1))
                register = (predecessor << 1) | (state & 1)
                metric = sum(v * (1 - 2 * _parity(register & g)) for v, g in zip(step, GENERATORS, strict=True))
                scores.append(path[predecessor] + metric)
            chosen.append(1 if scores[1] > scores[0] else 0)
            best.append(max(scores))
        path = best
        choices.append(chosen)
    state, bits = 0, []
    for chosen in reversed(choices):
        bits.append(state & 1)
        state = (state >> 1) | (chosen[state] << (MEMORY - 1))
    return bits[::-1][:PAYLOAD_BITS]


def test_the_block_decoder_finds_the_same_words_as_a_step_at_a_time_one() -> None:
    rng = np.random.default_rng(16)
    for signal in np.linspace(0.2, 2.0, 40):  # from mostly wrong words to clean ones
        word = rng.integers(0, 2, PAYLOAD_BITS)
        soft = ((1 - 2 * conv_encode(word)) * signal + rng.normal(size=CODED_BITS)).astype(np.float32)
        assert viterbi(soft).tolist() == viterbi_stepwise(soft)


def test_a_clean_codeword_decodes_to_its_word_and_silence_to_zeros() -> None:
    word = np.random.default_rng(3).integers(0, 2, PAYLOAD_BITS)
    assert viterbi((1 - 2 * conv_encode(word)).astype(np.float32)).tolist() == word.tolist()
    assert viterbi(np.zeros(CODED_BITS, dtype=np.float32)).tolist() == [0] * PAYLOAD_BITS
