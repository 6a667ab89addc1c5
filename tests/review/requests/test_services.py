"""Asking for assets: a brief checked whole before anything is registered, stored unchanged and
pinned, its campaign made with its deadline, and its run started; more asked of it; cancelled."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import DatabaseError, transaction
from django.utils import timezone

from prompt_library.models import Campaign, PromptVersion
from review.audit import AuditAction
from review.errors import RoleRequiredError
from review.models import Asset, AuditEvent, Run
from review.requests.errors import BriefRefusedError, RequestClosedError, RequestForbiddenError
from review.requests.models import AssetRequest, Brief
from review.requests.services import request_cancel, request_create, request_more
from review.states import AssetState
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db


def brief(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "template": "catalog-hero",
        "values": {"product": ["mug", "lamp"], "scene": ["a table"], "style": ["studio light"]},
        "variants_per_combination": 2,
        "renditions": ["web"],
        "deadline": timezone.now() + timedelta(days=2),
        "notes": "Keep the label readable.",
        "title": "Spring mugs",
    }
    return fields | overrides


def test_a_brief_is_stored_unchanged_pinned_and_its_run_started(
    library: Path, requester: User, submitted: list[int]
) -> None:
    made = request_create(requester=requester, **brief())
    campaign = made.campaign
    assert campaign.kind == Campaign.Kind.REQUEST and campaign.requested_by == requester
    assert campaign.deadline == made.deadline
    version = PromptVersion.objects.get(template__name="catalog-hero", number=1)
    assert made.prompt_version == version and campaign.prompt_version == version
    (first,) = made.briefs.all()
    assert first.number == 1 and first.submitted_by == requester
    assert first.content["values"] == {"product": ["mug", "lamp"], "scene": ["a table"], "style": ["studio light"]}
    assert first.content["variants"] == 4 and first.content["renditions"] == ["web"]
    # The run registered the 4 variants as pending assets, ahead in the review queue (deadline).
    run = Run.objects.get(campaign=campaign)
    assert submitted == [run.pk] and run.started_by == requester and run.priority == 0
    assets = list(Asset.objects.filter(campaign=campaign))
    assert len(assets) == 4 and {a.state for a in assets} == {AssetState.PENDING}
    assert {(a.queue_priority, a.queue_deadline) for a in assets} == {(0, made.deadline)}
    assert AuditEvent.objects.filter(action=AuditAction.REQUEST_CREATED, actor=requester).count() == 1


def test_a_brief_cannot_be_changed_or_deleted_in_the_database(library: Path, requester: User) -> None:
    made = request_create(requester=requester, **brief())
    stored = Brief.objects.get(request=made)
    for attempt in (
        lambda: Brief.objects.filter(pk=stored.pk).update(content={}),
        lambda: Brief.objects.filter(pk=stored.pk).delete(),
    ):
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
            attempt()
    assert Brief.objects.get(pk=stored.pk).content == stored.content


def stored_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


BAD_FIELDS = [
    ({"template": "no-such-template"}, "template", "no-such-template"),
    ({"version": 9}, "version", 9),
    (
        {"values": {"product": ["mug"], "scene": ["a table"], "style": ["x"], "colour": ["red"]}},
        "values.colour",
        ["red"],
    ),
    ({"values": {"product": ["mug"], "scene": ["a table"]}}, "values.style", None),
    ({"values": {"product": [""], "scene": ["a table"], "style": ["x"]}}, "values.product", ""),
    ({"values": {"product": ["{evil}"], "scene": ["a table"], "style": ["x"]}}, "values.product", "{evil}"),
    ({"values": {"product": ["mug", "mug"], "scene": ["a table"], "style": ["x"]}}, "values.product", "mug"),
    ({"variants_per_combination": 0}, "variants_per_combination", 0),
    ({"variants_per_combination": "2"}, "variants_per_combination", "2"),
    ({"variants_per_combination": 40}, "variants_per_combination", 40),  # 2 products x 40 > 48
    ({"renditions": ["poster"]}, "renditions", "poster"),
    ({"renditions": []}, "renditions", []),
    ({"notes": "x" * 2001}, "notes", "x" * 2001),
    ({"title": "t" * 201}, "title", "t" * 201),
    ({"title": "t\x00"}, "title", "t\x00"),
    ({"notes": "a\x00b"}, "notes", "a\x00b"),
    ({"template": "hero\x00"}, "template", "hero\x00"),
    ({"reference_image": b"\x89PNG"}, "reference_image", "4 bytes"),
]


@pytest.mark.parametrize(("change", "field", "value"), BAD_FIELDS, ids=[f for _, f, _ in BAD_FIELDS])
def test_each_bad_field_is_named_with_its_value_and_nothing_is_registered(
    library: Path, requester: User, submitted: list[int], change: dict[str, Any], field: str, value: object
) -> None:
    with pytest.raises(BriefRefusedError) as refused:
        request_create(requester=requester, **brief(**change))
    problems = {(p.field, repr(p.value)) for p in refused.value.problems}
    assert (field, repr(value)) in problems, refused.value.problems
    assert field in str(refused.value)
    assert not Campaign.objects.filter(kind=Campaign.Kind.REQUEST).exists()
    assert not AssetRequest.objects.exists() and not Asset.objects.exists() and submitted == []


def test_a_deadline_in_the_past_is_refused(library: Path, requester: User) -> None:
    past = timezone.now() - timedelta(hours=1)
    with pytest.raises(BriefRefusedError, match="deadline") as refused:
        request_create(requester=requester, **brief(deadline=past))
    assert refused.value.problems[0].value == past.isoformat()


def test_every_bad_field_is_reported_at_once(library: Path, requester: User) -> None:
    with pytest.raises(BriefRefusedError) as refused:
        request_create(requester=requester, **brief(variants_per_combination=0, renditions=["poster"], notes=5))
    assert {p.field for p in refused.value.problems} == {"variants_per_combination", "renditions", "notes"}


def test_a_model_that_fails_preflight_is_refused_before_anything_is_registered(library: Path, requester: User) -> None:
    PromptVersion.objects.filter(template__name="catalog-hero").update(model_manifest_hash="f" * 64)
    with pytest.raises(BriefRefusedError, match="fails preflight") as refused:
        request_create(requester=requester, **brief())
    assert refused.value.problems[0].field == "model" and refused.value.problems[0].value == "embedded-tiny"
    assert not Asset.objects.exists() and not AssetRequest.objects.exists()


def test_no_signing_key_is_refused_before_anything_is_registered(
    library: Path, requester: User, settings: SettingsWrapper, tmp_path: Path
) -> None:
    settings.GREENLIGHT_SIGNING_KEY = tmp_path / "missing.key"
    with pytest.raises(BriefRefusedError, match="signing key") as refused:
        request_create(requester=requester, **brief())
    assert refused.value.problems[0].field == "signing key"
    assert not Asset.objects.exists() and not AssetRequest.objects.exists()


def test_only_a_requester_may_ask_for_assets(library: Path) -> None:
    with pytest.raises(RoleRequiredError, match="requester"):
        request_create(requester=make_user(username="vic", roles=("reviewer",)), **brief())


def test_the_request_stays_pinned_when_the_template_gets_a_new_version(library: Path, requester: User) -> None:
    made = request_create(requester=requester, **brief(deadline=None))
    old = made.prompt_version
    newer = PromptVersion.objects.create(
        template=old.template,
        number=2,
        content_hash="e" * 64,
        prompt="something else entirely {product} {scene} {style}",
        model_name=old.model_name,
        model_manifest_hash=old.model_manifest_hash,
        params=old.params,
        spec=old.spec | {"number": 2, "prompt": "something else entirely {product} {scene} {style}"},
    )
    Run.objects.filter(campaign=made.campaign).update(state=Run.State.SUCCEEDED)
    request_more(request=made, user=requester, more_seeds=1)
    assets = Asset.objects.filter(campaign=made.campaign)
    assert assets.count() == 6
    assert set(assets.values_list("prompt_version", flat=True)) == {old.pk} != {newer.pk}
    assert all("something else" not in a.prompt for a in assets)


def test_asking_for_more_seeds_and_another_value_adds_variants_to_the_same_request(
    library: Path, requester: User, submitted: list[int]
) -> None:
    made = request_create(requester=requester, **brief(deadline=None))
    Run.objects.filter(campaign=made.campaign).update(state=Run.State.SUCCEEDED)
    request_more(request=made, user=requester, more_seeds=1)
    assert Asset.objects.filter(campaign=made.campaign).count() == 6  # 2 products x 3 seeds
    Run.objects.filter(campaign=made.campaign).update(state=Run.State.SUCCEEDED)
    request_more(request=made, user=requester, values={"product": ["bottle"]})
    assets = Asset.objects.filter(campaign=made.campaign)
    assert assets.count() == 9 and assets.filter(variables__product="bottle").count() == 3
    assert [b.content for b in made.briefs.order_by("number")][1:] == [
        {"more_seeds": 1, "values": {}, "variants": 2},
        {"more_seeds": 0, "values": {"product": ["bottle"]}, "variants": 3},
    ]
    assert len(submitted) == 3 and len(set(assets.values_list("seed", flat=True))) == 3


def test_asking_for_more_is_refused_while_the_run_is_open_or_with_nothing_asked(library: Path, requester: User) -> None:
    made = request_create(requester=requester, **brief())
    with pytest.raises(RequestClosedError, match="still generating"):
        request_more(request=made, user=requester, more_seeds=1)
    Run.objects.filter(campaign=made.campaign).update(state=Run.State.SUCCEEDED)
    with pytest.raises(BriefRefusedError, match="more_seeds"):
        request_more(request=made, user=requester)
    with pytest.raises(BriefRefusedError, match=r"values\.colour"):
        request_more(request=made, user=requester, values={"colour": ["red"]})
    with pytest.raises(BriefRefusedError, match="adds no new variants"):
        request_more(request=made, user=requester, values={"product": ["mug"]})
    assert made.briefs.count() == 1


def test_a_cancelled_request_leaves_no_pending_rows_and_no_files(
    library: Path, requester: User, settings: SettingsWrapper
) -> None:
    storage = Path(settings.GREENLIGHT_STORAGE_ROOT)
    before = stored_files(storage)
    made = request_create(requester=requester, **brief())
    run = Run.objects.get(campaign=made.campaign)
    request_cancel(request=made, user=requester)
    made.refresh_from_db()
    run.refresh_from_db()
    assert made.cancelled_at is not None and made.cancelled_by == requester
    assert run.state == Run.State.CANCELLED
    assets = Asset.objects.filter(campaign=made.campaign)
    assert assets.count() == 4 and {a.state for a in assets} == {AssetState.CANCELLED}
    assert all(not a.file_path and not a.thumb_path for a in assets)
    assert stored_files(storage) == before
    assert AuditEvent.objects.filter(action=AuditAction.GENERATION_CANCELLED).count() == 4
    assert AuditEvent.objects.filter(action=AuditAction.REQUEST_CANCELLED, actor=requester).count() == 1
    with pytest.raises(RequestClosedError, match="already cancelled"):
        request_cancel(request=made, user=requester)
    with pytest.raises(RequestClosedError, match="cancelled"):
        request_more(request=made, user=requester, more_seeds=1)


def test_another_requester_can_neither_cancel_nor_extend_a_request(library: Path, requester: User) -> None:
    made = request_create(requester=requester, **brief())
    other = make_user(username="otto", roles=("requester",))
    with pytest.raises(RequestForbiddenError):
        request_cancel(request=made, user=other)
    with pytest.raises(RequestForbiddenError):
        request_more(request=made, user=other, more_seeds=1)
    reviewer = make_user(username="rex", roles=("reviewer",))
    with pytest.raises(RequestForbiddenError):
        request_cancel(request=made, user=reviewer)
    admin = make_user(username="ada", roles=("admin",))
    request_cancel(request=made, user=admin)
