from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import make_user


@pytest.fixture
def reviewer_client(client: Client) -> Client:
    client.force_login(make_user(username="rita"))
    return client
