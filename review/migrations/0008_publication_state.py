"""Publication.state: the row is committed as an intent (`writing`) before its file is written.

Rows written before this migration were inserted in the same transaction that wrote their files,
so each one is `published`.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("review", "0007_manifest_record"),
    ]

    operations = [
        migrations.AddField(
            model_name="publication",
            name="state",
            field=models.CharField(
                choices=[("writing", "Writing"), ("published", "Published"), ("rolled_back", "Rolled back")],
                default="published",
                max_length=20,
            ),
            preserve_default=False,
        ),
        migrations.AddIndex(
            model_name="publication",
            index=models.Index(
                condition=models.Q(("state", "writing")), fields=["created_at"], name="publication_writing"
            ),
        ),
    ]
