"""Hand-over records the generation time the pipeline measured for each asset's batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from review.intake import GeneratedFile, assets_hand_over, assets_register
from review.models import Asset

pytestmark = pytest.mark.django_db


def test_hand_over_records_when_and_how_many_generation_seconds(library_dir: Path) -> None:
    library_load()
    variants = campaign_plan_get(name="demo-spring").variants[:2]
    assets_register(variants=variants)
    files = [
        GeneratedFile(
            key=v.key, file_path=f"m/{i}.png", thumb_path=f"t/{i}.jpg", mime="image/png", sha256="0" * 64, size=1
        )
        for i, v in enumerate(variants)
    ]
    assert len(assets_hand_over(files=files, generation_seconds=2.5)) == 2
    made = list(Asset.objects.filter(key__in=[v.key for v in variants]))
    assert {a.generation_seconds for a in made} == {2.5}
    assert all(a.generated_at is not None for a in made)
    # Handed over again (idempotent), nothing changes.
    assert assets_hand_over(files=files, generation_seconds=9.0) == []
    assert {a.generation_seconds for a in Asset.objects.filter(key__in=[v.key for v in variants])} == {2.5}
