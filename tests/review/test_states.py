from __future__ import annotations

import pytest

from review.errors import IllegalTransitionError
from review.states import TRANSITIONS, AssetState, transition_check


@pytest.mark.parametrize(
    ("from_state", "to_state"),
    [
        (AssetState.PENDING, AssetState.GENERATED),
        (AssetState.GENERATED, AssetState.IN_REVIEW),
        (AssetState.IN_REVIEW, AssetState.APPROVED),
        (AssetState.IN_REVIEW, AssetState.REJECTED),
        (AssetState.APPROVED, AssetState.PUBLISHED),
        (AssetState.PUBLISHED, AssetState.REVOKED),
    ],
)
def test_the_review_path_is_allowed(from_state: str, to_state: str) -> None:
    transition_check(serial=1, from_state=from_state, to_state=to_state)


@pytest.mark.parametrize(
    ("from_state", "to_state"),
    [
        (AssetState.IN_REVIEW, AssetState.PUBLISHED),  # nobody approved it
        (AssetState.PENDING, AssetState.APPROVED),
        (AssetState.REJECTED, AssetState.APPROVED),
        (AssetState.REJECTED, AssetState.PUBLISHED),
        (AssetState.REVOKED, AssetState.PUBLISHED),
        (AssetState.GENERATED, AssetState.APPROVED),
    ],
)
def test_illegal_transitions_are_refused_with_what_is_allowed(from_state: str, to_state: str) -> None:
    with pytest.raises(IllegalTransitionError) as err:
        transition_check(serial=7, from_state=from_state, to_state=to_state)
    assert f"Asset 7 is {from_state}: it cannot become {to_state}" in str(err.value)


def test_every_state_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(AssetState.values)
    assert all(target in AssetState.values for targets in TRANSITIONS.values() for target in targets)
