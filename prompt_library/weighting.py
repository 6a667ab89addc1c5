"""Prompt weighting in the common syntax, checked when a template is loaded and rewritten for compel.

The syntax, as written in templates and briefs:

    (word)           x1.1, nestable: ((word)) is x1.21
    (word:1.4)       an explicit weight (a number from 0 to 10)
    [word]           /1.1, nestable
    [word:0.5]       an explicit weight, as (word:0.5)
    \\( \\) \\[ \\]      literal brackets

compel, which builds the weighted embeddings, writes a weight after the group: ``(word)1.4``.
``compel_syntax`` rewrites the common form into that one; ``weighting_check`` refuses what would
be misread (an unbalanced bracket, ``[from:to:when]`` prompt editing, a weight out of range),
naming the position, so that a template is refused at load rather than drawn wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_WEIGHT = 10.0
UP, DOWN = 1.1, 1 / 1.1
_PAIRS = {"(": ")", "[": "]"}
_WEIGHT_RE = re.compile(r"^(?P<text>.*):\s*(?P<weight>-?(?:\d+(?:\.\d*)?|\.\d+))\s*$", re.DOTALL)
_BRACKET_RE = re.compile(r"(?<!\\)[()\[\]]")


class WeightingError(ValueError):
    """A prompt's weighting that cannot be read as written (``position`` is 0-based)."""

    def __init__(self, text: str, position: int, problem: str) -> None:
        self.text = text
        self.position = position
        self.problem = problem
        super().__init__(f"{problem} at character {position + 1}")


@dataclass
class _Open:
    bracket: str
    position: int
    parts: list[str]


def is_weighted(*prompts: str) -> bool:
    """Whether any prompt has an unescaped bracket (a weighted group)."""
    return any(_BRACKET_RE.search(p or "") for p in prompts)


def weighting_check(text: str) -> None:
    """Refuse weighting that would be misread, naming the position and the problem."""
    _rewrite(text, strict=True)


def compel_syntax(text: str) -> str:
    """``text`` in compel's syntax: ``(word:1.3)`` -> ``(word)1.3``, ``(word)`` -> ``(word)1.1``,
    ``[word]`` -> ``(word)0.9091``, ``[word:0.5]`` -> ``(word)0.5``, nested groups nested.

    An unbalanced bracket is kept as a literal one (escaped) rather than misread: templates are
    refused at load (``weighting_check``); this is for text that was never checked.
    """
    return _rewrite(text, strict=False)


def _rewrite(text: str, *, strict: bool) -> str:
    stack: list[_Open] = [_Open("", -1, [])]
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            stack[-1].parts.append(text[index : index + 2])
            index += 2
            continue
        if char in _PAIRS:
            stack.append(_Open(char, index, []))
        elif char in (")", "]"):
            top = stack[-1]
            if not top.bracket or _PAIRS[top.bracket] != char:
                if strict:
                    expected = (
                        f"; '{_PAIRS[top.bracket]}' closes the '{top.bracket}' opened before" if top.bracket else ""
                    )
                    raise WeightingError(
                        text, index, f"unbalanced '{char}'{expected} (write \\{char} for a literal one)"
                    )
                stack[-1].parts.append("\\" + char)
            else:
                stack.pop()
                stack[-1].parts.append(_group(text, top, index, strict=strict))
        else:
            stack[-1].parts.append(char)
        index += 1
    while len(stack) > 1:  # groups never closed
        top = stack.pop()
        if strict:
            raise WeightingError(
                text, top.position, f"unbalanced '{top.bracket}' (write \\{top.bracket} for a literal one)"
            )
        stack[-1].parts.extend(["\\" + top.bracket, *top.parts])
    return "".join(stack[0].parts)


def _group(text: str, group: _Open, end: int, *, strict: bool) -> str:
    """One closed group in compel's form: its text in parentheses and its weight after them."""
    inner = "".join(group.parts)
    weight = UP if group.bracket == "(" else DOWN
    match = _WEIGHT_RE.match(inner)
    if match:
        inner, weight = match["text"], float(match["weight"])
        if group.bracket == "[" and _unescaped_colon(inner) and strict:
            raise WeightingError(
                text, group.position, "prompt editing [from:to:when] is not supported; weight with [word:0.5]"
            )
        if not 0 <= weight <= MAX_WEIGHT:
            if strict:
                raise WeightingError(text, group.position, f"weight {weight:g} is outside 0 to {MAX_WEIGHT:g}")
            weight = min(max(weight, 0.0), MAX_WEIGHT)
    if not inner.strip():
        if strict:
            raise WeightingError(text, group.position, f"the group '{text[group.position : end + 1]}' is empty")
        return ""
    return f"({inner}){weight:.4g}"


def _unescaped_colon(text: str) -> bool:
    return re.search(r"(?<!\\):", text) is not None
