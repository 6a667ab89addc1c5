"""A hand-over writes every field of each file on its own asset row, in one statement for the
batch, and touches no other row."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from prompt_library.selectors import campaign_plan_get
from prompt_library.services import library_load
from review.intake import GeneratedFile, assets_hand_over, assets_register
from review.models import Asset
from review.states import AssetState

pytestmark = pytest.mark.django_db


def test_each_handed_over_row_gets_its_own_files_record_and_scores_in_one_update(library_dir: Path) -> None:
    library_load()
    variants = campaign_plan_get(name="demo-spring").variants[:5]
    assets_register(variants=variants)
    before = {a.key: a.updated_at for a in Asset.objects.filter(key__in=[v.key for v in variants])}
    files = [
        GeneratedFile(
            key=v.key,
            file_path=f"masters/{i}.png",
            thumb_path=f"thumbnails/{i}.jpg",
            mime="image/png",
            sha256=f"{i:064x}",
            size=1000 + i,
            generation_record={
                "seed": v.seed,
                "thumbnail": {"width": 256, "watermark": "own"},
                "name": f"it's {i}",
                "quoted": 'a "b" \\ c ü 🎨',
            },
            alt_text=f'alt "{i}" \\ ü' if i % 2 else "",
            fingerprint=f"dct-cos.v1:{i}",
            safety_score=None if i == 0 else i / 10,
            safety_flagged=i == 3,
        )
        for i, v in enumerate(variants[:4])  # the fifth stays pending
    ]

    with CaptureQueriesContext(connection) as queries:
        handed = assets_hand_over(files=files, generation_seconds=1.5)

    assert len(handed) == 4
    assert sum(1 for q in queries.captured_queries if q["sql"].startswith('UPDATE "review_asset"')) == 1
    rows = {a.key: a for a in Asset.objects.filter(key__in=[v.key for v in variants])}
    for i, (file, variant) in enumerate(zip(files, variants, strict=False)):
        row = rows[file.key]
        assert row.pk in handed
        assert (row.file_path, row.thumb_path, row.mime) == (file.file_path, file.thumb_path, "image/png")
        assert (row.file_sha256, row.file_size, row.fingerprint) == (file.sha256, file.size, file.fingerprint)
        assert row.generation_record == file.generation_record
        assert row.alt_text == (file.alt_text or variant.alt_text)  # the template's where none was made
        assert (row.safety_score, row.safety_flagged) == (file.safety_score, i == 3)
        assert (row.state, row.error, row.generation_seconds) == (AssetState.IN_REVIEW, "", 1.5)
        assert row.generated_at is not None and row.updated_at == row.generated_at > before[file.key]
    untouched = rows[variants[4].key]
    assert (untouched.state, untouched.file_path, untouched.updated_at) == (
        AssetState.PENDING,
        "",
        before[untouched.key],
    )
