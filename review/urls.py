from __future__ import annotations

from django.urls import path

from review.views import audit, decisions, health, queue, verify

app_name = "review"
urlpatterns = [
    path("", queue.queue, name="queue"),
    path("claim", decisions.task_claim, name="claim"),
    path("bulk", decisions.assets_bulk, name="bulk"),
    path("assets/<int:serial>/release", decisions.task_release, name="release"),
    path("assets/<int:serial>/", queue.asset_detail, name="asset"),
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
    path("assets/<int:serial>/<str:kind>", queue.asset_file, name="file"),
]
