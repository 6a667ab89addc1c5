"""Asset.mark_id (a random 40-bit watermark id, unique) and Asset.fingerprint; existing rows get
a fresh random mark id each (their files keep matching by sha256 and by their manifests)."""

from __future__ import annotations

from typing import Any

from django.db import migrations, models

import provenance.watermark_keys


def mark_ids_backfill(apps: Any, schema_editor: Any) -> None:
    Asset = apps.get_model("review", "Asset")
    taken: set[int] = set()
    for asset in Asset.objects.filter(mark_id__isnull=True).only("id").iterator():
        mark_id = provenance.watermark_keys.mark_id_new()
        while mark_id in taken:
            mark_id = provenance.watermark_keys.mark_id_new()
        taken.add(mark_id)
        Asset.objects.filter(pk=asset.pk).update(mark_id=mark_id)


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0009_run_worker_heartbeat"),
    ]

    operations = [
        migrations.AddField(
            model_name="asset",
            name="mark_id",
            field=models.BigIntegerField(null=True, editable=False),
        ),
        migrations.RunPython(mark_ids_backfill, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="asset",
            name="mark_id",
            field=models.BigIntegerField(default=provenance.watermark_keys.mark_id_new, editable=False, unique=True),
        ),
        migrations.AddField(
            model_name="asset",
            name="fingerprint",
            field=models.CharField(blank=True, default="", max_length=1200),
        ),
    ]
