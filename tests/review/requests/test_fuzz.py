"""The request pages' forms fed malformed values (digits of other scripts, huge numbers, empty
values, very long strings, NUL bytes, repeated fields): the answer is never a server error."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from review.requests.services import request_create

pytestmark = pytest.mark.django_db

VALUE = st.one_of(
    st.sampled_from(["", " ", "0", "-1", "١", "²", "9" * 19, "9" * 5000, "x\x00y", "{x}", "a\nb\n\n", "poster"]),
    st.text(max_size=300),
)
FIELDS = {
    "/requests/new": [
        "template",
        "title",
        "var_product",
        "var_scene",
        "var_style",
        "variants_per_combination",
        "renditions",
        "deadline",
        "notes",
    ],
    "/requests/{id}/more": ["more_seeds", "variable", "new_values"],
    "/requests/{id}/cancel": [],
    "/inbox/read": ["id"],
}


@pytest.mark.parametrize("path", list(FIELDS))
def test_malformed_request_forms_never_answer_a_server_error(
    library: Path, requester: User, client: Client, path: str
) -> None:
    made = request_create(
        requester=requester,
        template="catalog-hero",
        values={"product": ["mug"], "scene": ["a table"], "style": ["studio light"]},
        variants_per_combination=1,
        renditions=["web"],
        deadline=None,
        notes="",
    )
    client.force_login(requester)
    url = path.replace("{id}", str(made.pk))
    names = FIELDS[path]

    @settings(max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=st.dictionaries(st.sampled_from(names or ["x"]), st.one_of(VALUE, st.lists(VALUE, max_size=3))))
    def call(data: dict[str, object]) -> None:
        with transaction.atomic():
            response = client.post(url, data)
            transaction.set_rollback(True)
        assert response.status_code < 500, (url, data)

    call()
