"""Every form and filter of the dashboard, fed malformed values (digits of other scripts, huge and
negative numbers, empty values, very long strings, NUL bytes, repeated fields) by a logged-in user
who holds every role: whatever arrives, the answer is never a server error (5xx).

Requests go through Django's test client, in-process: the same view code a server runs. Each
example runs inside a savepoint rolled back afterwards, so every one starts from the same assets,
and a database error in one cannot poison the next.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import got_request_exception
from django.db import transaction
from django.http import HttpResponseBase
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from review.models import Asset
from review.states import AssetState
from tests.factories import AssetFactory, make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db

EXAMPLES = 25  # per endpoint: the whole file stays well under a minute

# Values a form is most likely to mishandle; hypothesis mixes them with text and integers of its own.
NASTY = [
    "",
    " ",
    "0",
    "1",
    "-1",
    "-0",
    "+1",
    "١",  # ARABIC-INDIC DIGIT ONE: str.isdigit() and int() accept it
    "²",  # SUPERSCRIPT TWO: str.isdigit() accepts it, int() refuses it
    "١٢",
    "１２",  # fullwidth digits
    "৫",
    "1e3",
    "1.5",
    "1.0",
    "0x10",
    "1_000",
    " 7 ",
    "7\n",
    "9" * 18,
    "9" * 19,
    "9" * 40,
    "9" * 5000,  # past Python's int() digit limit
    "\x00",
    "1\x00",
    "NaN",
    "inf",
    "=1+1",
    "@SUM(A1)",
    "<script>alert(1)</script>",
    "a" * 10_000,
    "approve",
    "reject",
    "off_brand",
    "in_review",
    "published",
    "master",
    "thumbnail",
    "4",
    "8",
    "\u202e",
]
VALUE = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
)
FIELD = st.one_of(VALUE, st.lists(VALUE, max_size=3))


def submit_nowhere(*, serials: Sequence[int]) -> str:
    """GREENLIGHT_RUN_SUBMIT for these tests: a regeneration asked for starts no run."""
    return "nowhere (fuzz test)"


# The assets every example starts from: (state, whether its master and thumbnail are recorded;
# they are never in storage).
WORLD_STATES = [
    (AssetState.IN_REVIEW, True),
    (AssetState.IN_REVIEW, False),  # not generated yet
    (AssetState.REJECTED, False),
    (AssetState.APPROVED, True),
    (AssetState.PUBLISHED, True),
]


@dataclass(frozen=True)
class World:
    """A user with every role, and assets in the states the forms act on."""

    client: Client
    serials: list[str]


@pytest.fixture
def world(greenlight_settings: SettingsWrapper) -> World:
    greenlight_settings.GREENLIGHT_RUN_SUBMIT = f"{__name__}.submit_nowhere"
    user = make_user(username="fuzz", roles=("reviewer", "publisher", "requester", "admin"))
    missing = {"file_path": "masters/gone.png", "thumb_path": "thumbs/gone.jpg", "mime": "image/png"}
    assets: list[Asset] = [
        AssetFactory.create(state=state, **(missing if files else {})) for state, files in WORLD_STATES
    ]
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return World(client=client, serials=[str(a.pk) for a in assets])


# A serial for the URL's path: "#i" is the world's i-th asset; the others do not exist (the
# route takes ASCII digits only).
SERIAL = st.one_of(
    st.sampled_from([f"#{i}" for i in range(len(WORLD_STATES))]), st.sampled_from(["0", "999999", "9" * 19, "9" * 40])
)


def _form(fields: Sequence[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Some of `fields` (each a value or a list of values), and perhaps a field no form has."""
    optional: dict[str, st.SearchStrategy[Any]] = {name: FIELD for name in fields}
    optional["unexpected"] = FIELD
    return st.fixed_dictionaries({}, optional=optional)


@dataclass(frozen=True)
class Endpoint:
    """One route: how to call it with a drawn serial and drawn data."""

    name: str
    request: Callable[[Client, str, Any], HttpResponseBase]
    data: st.SearchStrategy[Any]
    # (serial, data) always tried first: the findings this test was written for.
    examples: tuple[tuple[str, Any], ...] = ()


def _get(path: str) -> Callable[[Client, str, Any], HttpResponseBase]:
    return lambda client, serial, data: client.get(path.format(serial=serial), data)


def _post(path: str) -> Callable[[Client, str, Any], HttpResponseBase]:
    return lambda client, serial, data: client.post(path.format(serial=serial), data, follow=True)


def _file(client: Client, serial: str, data: tuple[str, str]) -> HttpResponseBase:
    kind, range_header = data
    return client.get(f"/assets/{serial}/{quote(kind, safe='')}", headers={"Range": range_header})


def _upload(path: str) -> Callable[[Client, str, Any], HttpResponseBase]:
    def call(client: Client, serial: str, data: tuple[str, bytes, dict[str, Any]]) -> HttpResponseBase:
        name, content, fields = data
        return client.post(path, {**fields, "file": SimpleUploadedFile(name or "x", content)})

    return call


def _raw(path: str) -> Callable[[Client, str, Any], HttpResponseBase]:
    def call(client: Client, serial: str, data: tuple[str, bytes]) -> HttpResponseBase:
        content_type, body = data
        return client.generic("POST", path, body, content_type=content_type)

    return call


CONTENT_TYPES = st.one_of(
    st.sampled_from(
        [
            "multipart/form-data",
            "multipart/form-data; boundary=",
            "multipart/form-data; boundary=xyz",
            "application/x-www-form-urlencoded",
            "application/json",
            "text/plain",
            "",
        ]
    ),
    st.text(max_size=40).filter(lambda s: "\n" not in s and "\r" not in s),
)
UPLOAD = st.tuples(st.text(max_size=40), st.binary(max_size=2048), _form(["file", "csrfmiddlewaretoken"]))
ENDPOINTS = [
    Endpoint("queue", _get("/"), _form(["state", "page"]), (("0", {"page": "9" * 5000}), ("0", {"page": "²"}))),
    Endpoint("audit", _get("/audit/"), _form(["action", "actor", "serial", "page"]), (("0", {"serial": "9" * 40}),)),
    Endpoint("audit_csv", _get("/audit.csv"), _form(["action", "actor", "serial", "page"])),
    Endpoint("asset", _get("/assets/{serial}/"), _form(["page"]), (("#0", {}), ("#3", {}))),
    Endpoint("compare", _get("/assets/{serial}/compare"), _form(["page"])),
    Endpoint(
        "file",
        _file,
        st.tuples(st.one_of(VALUE.filter(lambda s: s != ""), st.just("master")), VALUE),
        (("#0", ("master", "bytes=0-")), ("#0", ("thumbnail", "bytes=" + "9" * 5000 + "-"))),
    ),
    Endpoint("claim", _post("/claim"), _form([])),
    Endpoint("release", _post("/assets/{serial}/release"), _form([])),
    Endpoint(
        "bulk",
        _post("/bulk"),
        _form(["decision", "reason", "comment", "serials"]),
        (("0", {"decision": "approve", "serials": ["²"]}), ("0", {"decision": "reject", "serials": ["9" * 5000]})),
    ),
    Endpoint("approve", _post("/assets/{serial}/approve"), _form(["comment"])),
    Endpoint("reject", _post("/assets/{serial}/reject"), _form(["reason", "comment"])),
    Endpoint(
        "regenerate",
        _post("/assets/{serial}/regenerate"),
        _form(["count", "var_product", "var_scene"]),
        (("#2", {"count": "٤", "var_product": "mug", "var_scene": "a table"}),),
    ),
    Endpoint("comment", _post("/assets/{serial}/comment"), _form(["text"])),
    Endpoint("publish", _post("/assets/{serial}/publish"), _form([]), (("#3", {}),)),
    Endpoint("revoke", _post("/assets/{serial}/revoke"), _form(["reason"])),
    Endpoint("insight", _get("/insight/"), _form(["date_from", "date_to", "campaign", "template", "a", "b"])),
    Endpoint("insight_csv", _get("/insight/approval_version.csv"), _form(["date_from", "date_to", "campaign", "a"])),
    Endpoint("library_new", _post("/library/new"), _form(["template", "fmt", "text"])),
    Endpoint("library_parts", _post("/library/parts/"), _form(["kind", "name", "text"])),
    Endpoint("verify_page", _get("/verify/"), _form(["file"])),
    Endpoint("verify_upload", _upload("/verify/"), UPLOAD),
    Endpoint("verify_junk_body", _raw("/verify/"), st.tuples(CONTENT_TYPES, st.binary(max_size=2048))),
    Endpoint("api_verify_upload", _upload("/api/verify"), UPLOAD),
    Endpoint("api_verify_junk_body", _raw("/api/verify"), st.tuples(CONTENT_TYPES, st.binary(max_size=2048))),
]


@pytest.fixture
def server_errors() -> Iterator[list[str]]:
    """The exceptions views raised (a 5xx's cause), to name in the failure."""
    seen: list[str] = []

    def record(sender: object, request: object = None, **kwargs: object) -> None:
        seen.append("".join(traceback.format_exception(*sys.exc_info())))

    got_request_exception.connect(record)
    yield seen
    got_request_exception.disconnect(record)


def _body(response: HttpResponseBase) -> bytes:
    """The whole body, streamed or not: a streamed body fails while it is read."""
    if response.streaming:
        return b"".join(response.streaming_content)  # type: ignore[attr-defined]
    return response.content  # type: ignore[attr-defined]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_malformed_input_never_answers_a_server_error(
    world: World, endpoint: Endpoint, server_errors: list[str]
) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,  # no example database kept between runs: the explicit examples are the regressions
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(serial=SERIAL, data=endpoint.data)
    def call(serial: str, data: Any) -> None:
        """`data` for `endpoint`, URL-encoded or multipart (lists as repeated fields)."""
        server_errors.clear()
        if serial.startswith("#"):
            serial = world.serials[int(serial[1:])]
        with transaction.atomic():
            response = endpoint.request(world.client, serial, data)
            _body(response)
            transaction.set_rollback(True)
        assert response.status_code < 500, f"{endpoint.name} answered {response.status_code}:\n" + "\n".join(
            server_errors
        )

    for serial, data in endpoint.examples:
        call = example(serial=serial, data=data)(call)
    call()
