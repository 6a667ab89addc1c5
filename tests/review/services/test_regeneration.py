"""Regenerating from a rejected asset: new seeds or an edited variable, registered linked to the
original, generated through the flow and back in the review queue."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.test import Client
from PIL import Image

from prompt_library.errors import VariablesError
from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, reader_context
from provenance.watermark import watermark_read
from review.audit import AuditAction
from review.errors import RegenerateRefusedError, ReviewInputError, RoleRequiredError
from review.models import Asset, AuditEvent
from review.services import asset_regenerate, asset_reject, review_task_claim
from review.states import AssetState
from tests.factories import AssetFactory, make_user
from tests.fixture_types import SettingsWrapper
from tests.provenance.marks import installation_key


@pytest.mark.django_db
def test_regenerating_registers_new_seeds_linked_to_the_original() -> None:
    original = AssetFactory.create(state=AssetState.REJECTED, variables={"product": "mug", "scene": "a table"})
    reviewer = make_user(roles=("reviewer",))
    serials = asset_regenerate(asset=original, user=reviewer, count=3)
    new = list(Asset.objects.filter(pk__in=serials).order_by("id"))
    assert [a.pk for a in new] == serials
    assert {a.state for a in new} == {AssetState.PENDING}
    assert {a.regenerated_from_id for a in new} == {original.pk}
    assert {a.prompt for a in new} == {"a mug on a table"}
    assert len({a.seed for a in new} | {original.seed}) == 4
    event = AuditEvent.objects.get(asset=original, action=AuditAction.REGENERATION_REQUESTED)
    assert event.actor == reviewer
    assert event.detail["serials"] == serials and event.detail["variables"] == {}
    # Asking again gives other seeds, never the same images again.
    again = asset_regenerate(asset=original, user=reviewer, count=3)
    seeds = set(Asset.objects.filter(regenerated_from=original).values_list("seed", flat=True))
    assert len(again) == 3 and len(seeds) == 6


@pytest.mark.django_db
def test_an_edited_variable_changes_the_prompt_of_the_new_variants() -> None:
    original = AssetFactory.create(state=AssetState.REJECTED, variables={"product": "mug", "scene": "a table"})
    requester = make_user(roles=("requester",))
    (serial,) = asset_regenerate(
        asset=original, user=requester, count=1, variables={"product": "mug", "scene": "a beach"}
    )
    regenerated = Asset.objects.get(pk=serial)
    assert regenerated.prompt == "a mug on a beach"
    assert regenerated.variables == {"product": "mug", "scene": "a beach"}
    assert AuditEvent.objects.get(action=AuditAction.REGENERATION_REQUESTED).detail["variables"] == {"scene": "a beach"}


@pytest.mark.django_db
@pytest.mark.parametrize("state", [AssetState.IN_REVIEW, AssetState.APPROVED, AssetState.PUBLISHED])
def test_only_a_rejected_asset_can_be_regenerated(state: str) -> None:
    asset = AssetFactory.create(state=state)
    with pytest.raises(RegenerateRefusedError, match=f"is {state}"):
        asset_regenerate(asset=asset, user=make_user(), count=1)
    assert not Asset.objects.filter(regenerated_from=asset).exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"colour": "red"}, "needs variables product, scene"),
        ({"scene": "  "}, "variable 'scene' needs 1 to 200 characters"),
        ({"scene": "x" * 201}, "variable 'scene' needs 1 to 200 characters"),
    ],
)
def test_bad_variable_values_are_refused_naming_them(variables: dict[str, str], message: str) -> None:
    asset = AssetFactory.create(state=AssetState.REJECTED)
    with pytest.raises(ReviewInputError, match=message) as refused:
        asset_regenerate(asset=asset, user=make_user(), count=1, variables=variables)
    assert isinstance(refused.value.__cause__, VariablesError)
    assert Asset.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("count", [0, 9, True, "2"])
def test_a_count_out_of_range_is_refused(count: object) -> None:
    asset = AssetFactory.create(state=AssetState.REJECTED)
    with pytest.raises(ReviewInputError, match="count must be 1 to 8") as refused:
        asset_regenerate(asset=asset, user=make_user(), count=count)  # type: ignore[arg-type]
    assert (refused.value.field, refused.value.value) == ("count", count)
    assert not Asset.objects.filter(regenerated_from=asset).exists()


@pytest.mark.django_db
def test_a_publisher_alone_may_not_regenerate() -> None:
    asset = AssetFactory.create(state=AssetState.REJECTED)
    with pytest.raises(RoleRequiredError, match="reviewer or requester"):
        asset_regenerate(asset=asset, user=make_user(roles=("publisher",)), count=1)


@pytest.mark.django_db(transaction=True)
def test_regenerated_variants_are_generated_and_come_back_to_the_queue_linked(
    reviewable_assets: list[Asset], greenlight_settings: SettingsWrapper, library_dir: Path
) -> None:
    greenlight_settings.GREENLIGHT_ORCHESTRATOR = "inline"
    reviewer = make_user(roles=("reviewer",), username="rita")
    original = reviewable_assets[0]
    asset_reject(asset=original, reviewer=reviewer, reason="off_brand")
    client = Client()
    client.force_login(reviewer)
    page = client.get(f"/assets/{original.pk}/").content.decode()
    assert 'id="regenerate-form"' in page and 'name="var_scene"' in page

    scene = original.variables["scene"]
    form = {f"var_{name}": value for name, value in original.variables.items()}
    form.update(count="2", var_scene=f"{scene} at dusk")
    response = client.post(f"/assets/{original.pk}/regenerate", form, follow=True)
    assert response.status_code == 200
    regenerated = list(Asset.objects.filter(regenerated_from=original).order_by("id"))
    assert len(regenerated) == 2
    assert "Asked for 2 new variant(s)" in response.content.decode()
    config = provenance_config_from_settings()
    with reader_context(config.signing) as context:
        for asset in regenerated:
            assert asset.state == AssetState.IN_REVIEW, asset.error
            assert f"{scene} at dusk" in asset.prompt
            data = (config.storage_root / asset.file_path).read_bytes()
            report = c2pa_read(data, mime="image/png", context=context)
            assert report.state == "trusted"
            record = report.assertion("org.greenlight.generation")
            assert record is not None and record["seed"] == asset.seed and record["prompt"] == asset.prompt
            image = Image.open(io.BytesIO(data)).convert("RGB")
            assert watermark_read(image, key=installation_key()).serial == asset.mark_id
    # They are in the queue like any other asset, and link back both ways.
    claimed = {review_task_claim(reviewer=make_user(roles=("reviewer",))).pk for _ in range(5)}  # type: ignore[union-attr]
    assert {a.pk for a in regenerated} <= claimed
    page = client.get(f"/assets/{regenerated[0].pk}/").content.decode()
    assert f'id="regenerated-from">#{original.pk}<' in page
    page = client.get(f"/assets/{original.pk}/").content.decode()
    assert all(f"#{a.pk}<" in page for a in regenerated)
