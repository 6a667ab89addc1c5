"""The production dashboard's summary tables: PostgreSQL materialised views over assets and
decisions, refreshed by `review.insight.insight_refresh` (after each batch hand-over, at most once
a minute, and by `manage.py insight_refresh`). The dashboard reads only these, so its queries
cost the same at a thousand assets and at a million. SQLite has no materialised views: there the
dashboard says it needs PostgreSQL."""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

APPROVED = "('approved', 'published', 'revoked')"  # passed review (revoked after publication)
DECIDED = "('approved', 'published', 'revoked', 'rejected')"

UP = f"""
CREATE MATERIALIZED VIEW insight_asset_day AS
WITH d AS (
    SELECT asset_id, count(*) AS n, count(DISTINCT decision) AS kinds, max(created_at) AS last_at
    FROM review_reviewdecision GROUP BY asset_id
)
SELECT (coalesce(a.generated_at, a.created_at) AT TIME ZONE 'UTC')::date AS day,
       a.campaign_id, a.prompt_version_id, a.model_name, a.state,
       count(*) AS assets,
       coalesce(sum(a.generation_seconds), 0)::float8 AS gen_seconds,
       count(a.generation_seconds) AS gen_timed,
       count(d.asset_id) FILTER (WHERE d.n > 1) AS multi_reviewed,
       count(d.asset_id) FILTER (WHERE d.n > 1 AND d.kinds = 1) AS agreed,
       coalesce(sum(extract(epoch FROM d.last_at - a.generated_at))
           FILTER (WHERE a.state IN {DECIDED} AND a.generated_at IS NOT NULL), 0)::float8 AS decide_seconds,
       count(d.asset_id) FILTER (WHERE a.state IN {DECIDED} AND a.generated_at IS NOT NULL) AS decide_timed
FROM review_asset a LEFT JOIN d ON d.asset_id = a.id
GROUP BY 1, 2, 3, 4, 5;
CREATE UNIQUE INDEX insight_asset_day_key ON insight_asset_day (day, campaign_id, prompt_version_id, model_name, state);

CREATE MATERIALIZED VIEW insight_variable_day AS
SELECT (coalesce(a.generated_at, a.created_at) AT TIME ZONE 'UTC')::date AS day,
       a.campaign_id, a.prompt_version_id, kv.key AS name, kv.value AS value,
       count(*) FILTER (WHERE a.state IN {APPROVED}) AS approved,
       count(*) FILTER (WHERE a.state = 'rejected') AS rejected
FROM review_asset a CROSS JOIN LATERAL jsonb_each_text(a.variables) kv
WHERE a.state IN {DECIDED}
GROUP BY 1, 2, 3, 4, 5;
CREATE UNIQUE INDEX insight_variable_day_key ON insight_variable_day (day, campaign_id, prompt_version_id, name, value);

CREATE MATERIALIZED VIEW insight_combination AS
SELECT a.campaign_id, a.prompt_version_id, a.variables::text AS combination,
       count(*) FILTER (WHERE a.state IN {APPROVED}) AS approved,
       count(*) FILTER (WHERE a.state = 'rejected') AS rejected
FROM review_asset a
WHERE a.state IN {DECIDED}
GROUP BY 1, 2, 3;
CREATE UNIQUE INDEX insight_combination_key ON insight_combination (prompt_version_id, campaign_id, combination);

CREATE MATERIALIZED VIEW insight_review_day AS
SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, r.reviewer_id, a.campaign_id, a.prompt_version_id,
       count(*) AS decisions, count(*) FILTER (WHERE r.decision = 'approve') AS approvals
FROM review_reviewdecision r JOIN review_asset a ON a.id = r.asset_id
GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX insight_review_day_key ON insight_review_day (day, reviewer_id, campaign_id, prompt_version_id);

CREATE MATERIALIZED VIEW insight_reason_day AS
SELECT (r.created_at AT TIME ZONE 'UTC')::date AS day, a.campaign_id, a.prompt_version_id, r.reason,
       count(*) AS rejections
FROM review_reviewdecision r JOIN review_asset a ON a.id = r.asset_id
WHERE r.decision = 'reject'
GROUP BY 1, 2, 3, 4;
CREATE UNIQUE INDEX insight_reason_day_key ON insight_reason_day (day, campaign_id, prompt_version_id, reason);

CREATE MATERIALIZED VIEW insight_refreshed AS SELECT 1 AS one, clock_timestamp() AS refreshed_at;
CREATE UNIQUE INDEX insight_refreshed_key ON insight_refreshed (one);
"""

DOWN = """
DROP MATERIALIZED VIEW IF EXISTS insight_refreshed;
DROP MATERIALIZED VIEW IF EXISTS insight_reason_day;
DROP MATERIALIZED VIEW IF EXISTS insight_review_day;
DROP MATERIALIZED VIEW IF EXISTS insight_combination;
DROP MATERIALIZED VIEW IF EXISTS insight_variable_day;
DROP MATERIALIZED VIEW IF EXISTS insight_asset_day;
"""


def _up(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UP)


def _down(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DOWN)


class Migration(migrations.Migration):
    dependencies = [("review", "0012_asset_generation_seconds")]

    operations = [migrations.RunPython(_up, _down)]
