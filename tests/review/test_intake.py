from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from provenance.config import provenance_config_from_settings
from provenance.credentials import c2pa_read, reader_context
from provenance.watermark import watermark_read
from review.errors import AlreadyDecidedError, IllegalTransitionError, PublishRefusedError
from review.intake import asset_generation_fail, assets_hand_over
from review.models import Asset, AuditEvent, Publication
from review.services import asset_approve, asset_publish, asset_reject
from review.states import AssetState
from tests.factories import make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db


def actions_of(asset: Asset) -> list[str]:
    return list(asset.events.order_by("id").values_list("action", flat=True))


def test_hand_over_queues_assets_with_an_audit_trail(reviewable_assets: list[Asset]) -> None:
    asset = reviewable_assets[0]
    assert actions_of(asset) == ["registered", "generated", "submitted"]
    assert asset.file_sha256 and asset.file_size and asset.generation_record["seed"] == asset.seed


def test_handing_the_same_files_over_again_changes_nothing(reviewable_assets: list[Asset]) -> None:
    from review.intake import GeneratedFile

    asset = reviewable_assets[0]
    again = GeneratedFile(
        key=asset.key,
        file_path=asset.file_path,
        thumb_path=asset.thumb_path,
        mime=asset.mime,
        sha256=asset.file_sha256,
        size=asset.file_size or 0,
    )
    assert assets_hand_over(files=[again]) == []
    assert AuditEvent.objects.filter(asset=asset).count() == 3


def test_approve_moves_to_approved_and_records_decision_and_event(reviewable_assets: list[Asset]) -> None:
    reviewer = make_user()
    asset = asset_approve(asset=reviewable_assets[0], reviewer=reviewer, comment="on brand")
    assert asset.state == AssetState.APPROVED
    event = AuditEvent.objects.filter(asset=asset).latest("id")
    assert (event.action, event.actor, event.from_state, event.to_state) == (
        "approve",
        reviewer,
        "in_review",
        "approved",
    )
    assert event.detail["comment"] == "on brand"


def test_reject_needs_a_known_reason(reviewable_assets: list[Asset]) -> None:
    with pytest.raises(ValueError, match="reason must be one of"):
        asset_reject(asset=reviewable_assets[0], reviewer=make_user(), reason="ugly")
    asset = asset_reject(asset=reviewable_assets[0], reviewer=make_user(), reason="visual_artifact", comment="smudge")
    assert asset.state == AssetState.REJECTED
    assert asset.decisions.get().reason == "visual_artifact"


def test_a_decided_asset_cannot_be_decided_again(reviewable_assets: list[Asset]) -> None:
    reviewer = make_user()
    asset_approve(asset=reviewable_assets[0], reviewer=reviewer)
    with pytest.raises(IllegalTransitionError):
        asset_reject(asset=reviewable_assets[0], reviewer=make_user(), reason="other")
    assert Asset.objects.get(pk=reviewable_assets[0].pk).state == AssetState.APPROVED


def test_a_reviewer_cannot_decide_twice_on_one_asset(reviewable_assets: list[Asset]) -> None:
    from review.models import ReviewDecision

    reviewer = make_user()
    asset = reviewable_assets[0]
    ReviewDecision.objects.create(asset=asset, reviewer=reviewer, decision="approve")
    with pytest.raises(AlreadyDecidedError):
        asset_approve(asset=asset, reviewer=reviewer)


def test_publishing_an_asset_in_review_is_refused_and_writes_nothing(
    reviewable_assets: list[Asset], settings: SettingsWrapper
) -> None:
    asset = reviewable_assets[0]
    with pytest.raises(
        PublishRefusedError, match=f"Asset {asset.pk} is in_review: only approved assets can be published"
    ):
        asset_publish(asset=asset, user=make_user())
    assert not Path(settings.GREENLIGHT_PUBLISH_ROOT).exists() or not any(
        Path(settings.GREENLIGHT_PUBLISH_ROOT).rglob("*.*")
    )
    assert Publication.objects.count() == 0


def test_publishing_a_rejected_asset_is_refused(reviewable_assets: list[Asset]) -> None:
    asset = asset_reject(asset=reviewable_assets[0], reviewer=make_user(), reason="off_brand")
    with pytest.raises(PublishRefusedError):
        asset_publish(asset=asset, user=make_user())


def test_publishing_an_approved_asset_writes_signed_renditions_with_the_master_as_parent(
    reviewable_assets: list[Asset],
    settings: SettingsWrapper,
) -> None:
    publisher = make_user()
    asset = asset_approve(asset=reviewable_assets[0], reviewer=make_user())
    publications = asset_publish(asset=asset, user=publisher)
    assert [(p.rendition, p.mime, p.width) for p in publications] == [
        ("web", "image/jpeg", 1024),
        ("thumb", "image/webp", 256),
    ]
    config = provenance_config_from_settings()
    with reader_context(config.signing) as context:
        reports = {}
        for publication in publications:
            data = (Path(settings.GREENLIGHT_PUBLISH_ROOT) / publication.path).read_bytes()
            reports[publication.rendition] = (data, c2pa_read(data, mime=publication.mime, context=context))
    for publication in publications:
        data, report = reports[publication.rendition]
        assert report.state == "trusted", report.validation_codes
        assert report.manifest is not None
        assert [i.get("relationship") for i in report.manifest.get("ingredients", [])] == ["parentOf"]
        assert "c2pa.resized" in report.actions()
        image = Image.open(io.BytesIO(data))
        assert image.size == (publication.width, publication.height)
        # The watermark is claimed exactly when it reads back (lossy WebP's 4:2:0 chroma loses it).
        found = watermark_read(image.convert("RGB")).serial == asset.pk
        assert found == ("c2pa.watermarked" in report.actions())
        if publication.rendition == "web":
            assert found
    published = Asset.objects.get(pk=asset.pk)
    assert published.state == AssetState.PUBLISHED
    assert actions_of(published)[-1] == "published"


def test_a_failed_generation_is_recorded_and_can_be_handed_over_on_retry(reviewable_assets: list[Asset]) -> None:
    from prompt_library.selectors import campaign_plan_get
    from review.intake import assets_register

    variant = campaign_plan_get(name="demo-spring").variants[5]
    assets_register(variants=[variant])
    asset_generation_fail(key=variant.key, error="RuntimeError: out of memory")
    failed = Asset.objects.get(key=variant.key)
    assert (failed.state, failed.error) == (AssetState.FAILED, "RuntimeError: out of memory")
    assert actions_of(failed) == ["registered", "generation_failed"]


def test_services_refuse_users_without_the_role_whatever_calls_them(reviewable_assets: list[Asset]) -> None:
    from review.errors import RoleRequiredError

    asset = reviewable_assets[0]
    with pytest.raises(RoleRequiredError, match="needs the reviewer role"):
        asset_approve(asset=asset, reviewer=make_user(roles=("publisher",)))
    approved = asset_approve(asset=asset, reviewer=make_user(roles=("reviewer",)))
    with pytest.raises(RoleRequiredError, match="needs the publisher role"):
        asset_publish(asset=approved, user=make_user(roles=("reviewer",)))
    assert Asset.objects.get(pk=asset.pk).state == AssetState.APPROVED


def test_a_requester_cannot_approve_assets_of_their_own_request(reviewable_assets: list[Asset]) -> None:
    from review.errors import SegregationOfDutiesError

    asset = reviewable_assets[0]
    requester = make_user(roles=("reviewer", "requester"))
    asset.campaign.requested_by = requester
    asset.campaign.save()
    with pytest.raises(SegregationOfDutiesError, match="cannot also decide on it"):
        asset_approve(asset=asset, reviewer=requester)
    assert asset_approve(asset=asset, reviewer=make_user()).state == AssetState.APPROVED


def test_revoke_removes_the_published_files_and_is_recorded(
    reviewable_assets: list[Asset], settings: SettingsWrapper
) -> None:
    from review.services import asset_revoke

    publisher = make_user()
    asset = asset_approve(asset=reviewable_assets[0], reviewer=make_user())
    publications = asset_publish(asset=asset, user=publisher)
    files = [Path(settings.GREENLIGHT_PUBLISH_ROOT) / p.path for p in publications]
    assert all(f.is_file() for f in files)
    with pytest.raises(ValueError, match="needs a reason"):
        asset_revoke(asset=asset, user=publisher, reason=" ")
    revoked = asset_revoke(asset=asset, user=publisher, reason="wrong price on the label")
    assert revoked.state == AssetState.REVOKED
    assert not any(f.exists() for f in files)
    assert all(p.revoked_at is not None for p in Publication.objects.filter(asset=asset))
    event = AuditEvent.objects.filter(asset=asset).latest("id")
    assert (event.action, event.actor, event.detail["reason"]) == ("revoked", publisher, "wrong price on the label")
    assert sorted(event.detail["removed"]) == sorted(p.path for p in publications)


def test_comments_go_into_the_history_without_changing_the_state(reviewable_assets: list[Asset]) -> None:
    from review.services import asset_comment

    asset = reviewable_assets[0]
    with pytest.raises(ValueError, match="needs some text"):
        asset_comment(asset=asset, user=make_user(), text="   ")
    event = asset_comment(asset=asset, user=make_user(), text="Logo looks stretched")
    assert (event.action, event.detail["comment"], event.to_state) == ("commented", "Logo looks stretched", "in_review")
    assert Asset.objects.get(pk=asset.pk).state == AssetState.IN_REVIEW
