"""Numbers from requests are read as ASCII digits only: no other script's digits, signs or separators."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from django import forms

from review.forms import AsciiIntegerField, SerialListField

# Every character Python's int() reads as a decimal digit, other than 0-9: over 700 of them
# (Arabic-Indic, Devanagari, fullwidth, mathematical...), and the superscripts isdigit() accepts.
OTHER_DIGITS = [
    c
    for c in map(chr, range(sys.maxunicode + 1))
    if (unicodedata.category(c) == "Nd" or c.isdigit()) and not ("0" <= c <= "9")
]


def test_there_are_hundreds_of_other_digits_to_refuse() -> None:
    assert len(OTHER_DIGITS) > 600
    assert "١" in OTHER_DIGITS and "²" in OTHER_DIGITS and "７" in OTHER_DIGITS


@pytest.mark.parametrize("field", [AsciiIntegerField(), SerialListField()], ids=["number", "serials"])
def test_every_digit_of_another_script_is_refused(field: forms.Field) -> None:
    accepted = []
    for digit in OTHER_DIGITS:
        for text in (digit, f"1{digit}", f"{digit}2"):
            try:
                field.clean([text] if isinstance(field, SerialListField) else text)
            except forms.ValidationError:
                continue
            accepted.append(text)
    assert accepted == []


@pytest.mark.parametrize("text", ["-1", "+1", "1.0", "1_000", "1e3", "0x10", " ", "1 2", "\x00", "1" * 19, "", "١"])
def test_malformed_numbers_are_refused(text: str) -> None:
    with pytest.raises(forms.ValidationError):
        AsciiIntegerField(required=True).clean(text)


@pytest.mark.parametrize(("text", "value"), [("7", 7), (" 42 ", 42), ("000123", 123), ("9" * 18, int("9" * 18))])
def test_ascii_numbers_are_read(text: str, value: int) -> None:
    assert AsciiIntegerField().clean(text) == value
    assert SerialListField().clean([text, "1"]) == [value, 1]
