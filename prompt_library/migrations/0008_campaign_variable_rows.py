from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("prompt_library", "0007_campaign_source_image"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="variable_rows",
            field=models.JSONField(blank=True, default=list),
        ),
    ]
