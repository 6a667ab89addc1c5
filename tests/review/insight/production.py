"""A hand-built production history for the dashboard's tests: two versions of one template, two
campaigns, two models, two reviewers, eleven assets over two days. The right answers are worked
out by hand in the tests from the table below.

  asset  version/campaign/model  state      scene  gen s  generated decisions (who decision reason @time)
  a1     hero v1 spring m-a      approved   beach  10     D1 10:00  ana approve @D1 11:00, ben approve @D1 12:00
  a2     hero v1 spring m-a      approved   beach  10     D1 10:00  ana approve @D1 10:30, ben approve @D1 11:00
  a3     hero v1 spring m-a      rejected   city   10     D1 10:00 ana approve @D1 10:10, ben reject off_brand @D1 10:20
  a4     hero v1 spring m-a      rejected   city   10     D2 09:00  ana reject visual_artifact @D2 09:30
  a5     hero v1 spring m-a      in_review  beach  10     D2 09:00  (created D2 08:00)
  a6     hero v1 spring m-a      pending    beach  -      -         (created D2 07:00)
  b1     hero v2 summer m-b      approved   beach  4      D2 10:00  ana approve @D2 10:10
  b2     hero v2 summer m-b      approved   beach  4      D2 10:00  ben approve @D2 10:10
  b3     hero v2 summer m-b      approved   city   4      D2 10:00  ana approve @D2 10:10
  b4     hero v2 summer m-b      rejected   city   4      D2 10:00  ben reject off_brand @D2 10:10
  b5     hero v2 summer m-b      in_review  city   4      D2 10:00  (created D2 09:00)

hero v1 includes the style "house"; v2 no style. spring's deadline (D1 23:00) has passed; summer has none.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import User

from prompt_library.models import Campaign, PromptTemplate, PromptVersion
from review.models import Asset, ReviewDecision

D1 = datetime(2026, 3, 1, tzinfo=UTC)
D2 = D1 + timedelta(days=1)
NOW = D2 + timedelta(days=1, hours=8)  # D3 08:00


def at(day: datetime, hhmm: str) -> datetime:
    hours, minutes = hhmm.split(":")
    return day + timedelta(hours=int(hours), minutes=int(minutes))


ROWS = [
    # name, version, state, scene, seconds, generated, created, decisions
    (
        "a1",
        1,
        "approved",
        "beach",
        10.0,
        at(D1, "10:00"),
        None,
        [("ana", "approve", "", at(D1, "11:00")), ("ben", "approve", "", at(D1, "12:00"))],
    ),
    (
        "a2",
        1,
        "approved",
        "beach",
        10.0,
        at(D1, "10:00"),
        None,
        [("ana", "approve", "", at(D1, "10:30")), ("ben", "approve", "", at(D1, "11:00"))],
    ),
    (
        "a3",
        1,
        "rejected",
        "city",
        10.0,
        at(D1, "10:00"),
        None,
        [("ana", "approve", "", at(D1, "10:10")), ("ben", "reject", "off_brand", at(D1, "10:20"))],
    ),
    ("a4", 1, "rejected", "city", 10.0, at(D2, "09:00"), None, [("ana", "reject", "visual_artifact", at(D2, "09:30"))]),
    ("a5", 1, "in_review", "beach", 10.0, at(D2, "09:00"), at(D2, "08:00"), []),
    ("a6", 1, "pending", "beach", None, None, at(D2, "07:00"), []),
    ("b1", 2, "approved", "beach", 4.0, at(D2, "10:00"), None, [("ana", "approve", "", at(D2, "10:10"))]),
    ("b2", 2, "approved", "beach", 4.0, at(D2, "10:00"), None, [("ben", "approve", "", at(D2, "10:10"))]),
    ("b3", 2, "approved", "city", 4.0, at(D2, "10:00"), None, [("ana", "approve", "", at(D2, "10:10"))]),
    ("b4", 2, "rejected", "city", 4.0, at(D2, "10:00"), None, [("ben", "reject", "off_brand", at(D2, "10:10"))]),
    ("b5", 2, "in_review", "city", 4.0, at(D2, "10:00"), at(D2, "09:00"), []),
]


@dataclass(frozen=True)
class Production:
    v1: PromptVersion
    v2: PromptVersion
    spring: Campaign
    summer: Campaign
    assets: dict[str, Asset]


_serial = itertools.count()


def production_build(*, copies: int = 1) -> Production:
    """The table above (`copies` times over, for query-count tests: the answers scale, the
    number of queries must not)."""
    template, _ = PromptTemplate.objects.get_or_create(name="hero")
    common = {"template": template, "prompt": "a {scene}", "model_manifest_hash": "0" * 64, "params": {}, "spec": {}}
    v1, _ = PromptVersion.objects.get_or_create(
        number=1,
        defaults={**common, "content_hash": "1" * 64, "model_name": "m-a", "parts": {"style": ["house", 1]}},
        template=template,
    )
    v2, _ = PromptVersion.objects.get_or_create(
        number=2, defaults={**common, "content_hash": "2" * 64, "model_name": "m-b"}, template=template
    )
    spring, _ = Campaign.objects.get_or_create(
        name="spring", defaults={"prompt_version": v1, "deadline": at(D1, "23:00"), "approvals_required": 2}
    )
    summer, _ = Campaign.objects.get_or_create(name="summer", defaults={"prompt_version": v2})
    users = {name: User.objects.get_or_create(username=name)[0] for name in ("ana", "ben")}
    assets: dict[str, Asset] = {}
    for _ in range(copies):
        for name, number, state, scene, seconds, generated, created, decisions in ROWS:
            version, campaign, model = (v1, spring, "m-a") if number == 1 else (v2, summer, "m-b")
            serial = next(_serial)
            asset = Asset.objects.create(
                key=f"{name}-{serial}",
                campaign=campaign,
                prompt_version=version,
                state=state,
                variables={"scene": scene},
                prompt=f"a {scene}",
                seed=serial,
                steps=4,
                guidance=1.0,
                width=64,
                height=64,
                model_name=model,
                model_manifest_hash="0" * 64,
                generated_at=generated,
                generation_seconds=seconds,
            )
            Asset.objects.filter(pk=asset.pk).update(created_at=created or generated)
            for reviewer, decision, reason, when in decisions:
                row = ReviewDecision.objects.create(
                    asset=asset, reviewer=users[reviewer], decision=decision, reason=reason
                )
                ReviewDecision.objects.filter(pk=row.pk).update(created_at=when)
            assets[name] = asset
    return Production(v1=v1, v2=v2, spring=spring, summer=summer, assets=assets)
