"""The dashboard's filters on every panel, and its speed at a million assets.

- `insight_combination` gains the day (the asset's generation day, as every other summary view),
  so the A/B view follows the date range as well as the campaign and template.
- All-time totals of the per-day views (`insight_asset_total`, `insight_variable_total`,
  `insight_combination_total`), made from the per-day views themselves (refreshing them costs
  milliseconds): a page without a date range reads a few hundred rows however long the history
  is, instead of summing a row per day. A date range reads the per-day views.
- A partial index on the assets in review by that day and their age: the queue's oldest waiting
  asset is read live, and with a date range it is found by one index probe per day in the range
  instead of a walk over every older asset in review.

SQLite has neither: there the dashboard says it needs PostgreSQL."""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

APPROVED = "('approved', 'published', 'revoked')"  # passed review (revoked after publication)
DECIDED = "('approved', 'published', 'revoked', 'rejected')"
DAY = "((coalesce(generated_at, created_at) AT TIME ZONE 'UTC')::date)"

UP = f"""
DROP MATERIALIZED VIEW IF EXISTS insight_combination;
CREATE MATERIALIZED VIEW insight_combination AS
SELECT (coalesce(a.generated_at, a.created_at) AT TIME ZONE 'UTC')::date AS day,
       a.campaign_id, a.prompt_version_id, a.variables::text AS combination,
       count(*) FILTER (WHERE a.state IN {APPROVED}) AS approved,
       count(*) FILTER (WHERE a.state = 'rejected') AS rejected
FROM review_asset a
WHERE a.state IN {DECIDED}
GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX insight_combination_key ON insight_combination (prompt_version_id, campaign_id, day, combination);

CREATE MATERIALIZED VIEW insight_asset_total AS
SELECT campaign_id, prompt_version_id, model_name, state,
       sum(assets)::bigint AS assets, sum(gen_seconds)::float8 AS gen_seconds, sum(gen_timed)::bigint AS gen_timed,
       sum(multi_reviewed)::bigint AS multi_reviewed, sum(agreed)::bigint AS agreed,
       sum(decide_seconds)::float8 AS decide_seconds, sum(decide_timed)::bigint AS decide_timed
FROM insight_asset_day GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX insight_asset_total_key ON insight_asset_total (campaign_id, prompt_version_id, model_name, state);

CREATE MATERIALIZED VIEW insight_variable_total AS
SELECT campaign_id, prompt_version_id, name, value,
       sum(approved)::bigint AS approved, sum(rejected)::bigint AS rejected
FROM insight_variable_day GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX insight_variable_total_key ON insight_variable_total (campaign_id, prompt_version_id, name, value);

CREATE MATERIALIZED VIEW insight_combination_total AS
SELECT campaign_id, prompt_version_id, combination,
       sum(approved)::bigint AS approved, sum(rejected)::bigint AS rejected
FROM insight_combination GROUP BY 1, 2, 3;
CREATE UNIQUE INDEX insight_combination_total_key
    ON insight_combination_total (prompt_version_id, campaign_id, combination);

CREATE INDEX asset_waiting_day ON review_asset ({DAY}, created_at) WHERE state = 'in_review';
"""

DOWN = f"""
DROP INDEX IF EXISTS asset_waiting_day;
DROP MATERIALIZED VIEW IF EXISTS insight_combination_total;
DROP MATERIALIZED VIEW IF EXISTS insight_variable_total;
DROP MATERIALIZED VIEW IF EXISTS insight_asset_total;
DROP MATERIALIZED VIEW IF EXISTS insight_combination;
CREATE MATERIALIZED VIEW insight_combination AS
SELECT a.campaign_id, a.prompt_version_id, a.variables::text AS combination,
       count(*) FILTER (WHERE a.state IN {APPROVED}) AS approved,
       count(*) FILTER (WHERE a.state = 'rejected') AS rejected
FROM review_asset a
WHERE a.state IN {DECIDED}
GROUP BY 1, 2, 3;
CREATE UNIQUE INDEX insight_combination_key ON insight_combination (prompt_version_id, campaign_id, combination);
"""


def _up(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UP)


def _down(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DOWN)


class Migration(migrations.Migration):
    dependencies = [("review", "0015_asset_safety")]

    operations = [migrations.RunPython(_up, _down)]
