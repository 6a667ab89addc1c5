from __future__ import annotations

from django.urls import path

from review.views import audit, campaigns, decisions, health, insight, library, queue, sources, verify
from review.views import requests as asset_requests

app_name = "review"
urlpatterns = [
    path("", queue.queue, name="queue"),
    path("claim", decisions.task_claim, name="claim"),
    path("bulk", decisions.assets_bulk, name="bulk"),
    path("assets/<int:serial>/release", decisions.task_release, name="release"),
    path("assets/<int:serial>/", queue.asset_detail, name="asset"),
    path("sources/<str:sha256>", sources.source_image_file, name="source_image"),
    path("assets/<int:serial>/approve", decisions.asset_approve, name="approve"),
    path("assets/<int:serial>/reject", decisions.asset_reject, name="reject"),
    path("assets/<int:serial>/publish", decisions.asset_publish, name="publish"),
    path("assets/<int:serial>/revoke", decisions.asset_revoke, name="revoke"),
    path("assets/<int:serial>/comment", decisions.asset_comment, name="comment"),
    path("assets/<int:serial>/compare", queue.asset_compare, name="compare"),
    path("assets/<int:serial>/regenerate", decisions.asset_regenerate, name="regenerate"),
    path("audit/", audit.audit_log, name="audit"),
    path("audit.csv", audit.audit_csv, name="audit_csv"),
    path("verify/", verify.verify_page, name="verify"),
    path("health/", health.health, name="health"),
    path("requests/", asset_requests.request_list, name="requests"),
    path("requests/new", asset_requests.request_new, name="request_new"),
    path("requests/<int:pk>/", asset_requests.request_detail, name="request"),
    path("requests/<int:pk>/progress.json", asset_requests.request_progress, name="request_progress"),
    path("requests/<int:pk>/cancel", asset_requests.request_cancel, name="request_cancel"),
    path("requests/<int:pk>/more", asset_requests.request_more, name="request_more"),
    path("requests/<int:pk>/approved.zip", asset_requests.request_download, name="request_download"),
    path("inbox/", asset_requests.inbox, name="inbox"),
    path("inbox/count.json", asset_requests.inbox_count, name="inbox_count"),
    path("inbox/read", asset_requests.inbox_read, name="inbox_read"),
    path("library/", library.library_index, name="library"),
    path("library/new", library.version_new, name="library_new"),
    path("library/parts/", library.parts, name="library_parts"),
    path("library/campaigns/<slug:name>/matrix", library.campaign_matrix, name="library_matrix"),
    path("library/<slug:name>/", library.template_detail, name="library_template"),
    path("library/<slug:name>/diff", library.version_diff, name="library_diff"),
    path("library/<slug:name>/v<int:number>/", library.version_detail, name="library_version"),
    path("library/<slug:name>/v<int:number>.yaml", library.version_export, name="library_export"),
    path("insight/", insight.dashboard, name="insight"),
    path("insight/refresh", insight.dashboard_refresh, name="insight_refresh"),
    path("insight/<slug:key>.csv", insight.dashboard_csv, name="insight_csv"),
    path("healthz", campaigns.healthz, name="healthz"),
    path("campaigns/", campaigns.campaign_list, name="campaigns"),
    path("campaigns/<slug:name>/run", campaigns.campaign_run_now, name="campaign_run"),
    path("runs/<int:run_id>/progress.json", campaigns.run_progress_json, name="run_progress"),
    path("runs/<int:run_id>/<str:action>", campaigns.run_action, name="run_action"),
    path("assets/<int:serial>/<str:kind>", queue.asset_file, name="file"),
]
