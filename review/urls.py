from __future__ import annotations

from django.urls import path

from review import views

app_name = "review"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("claim", views.task_claim, name="claim"),
    path("bulk", views.assets_bulk, name="bulk"),
    path("assets/<int:serial>/release", views.task_release, name="release"),
    path("assets/<int:serial>/", views.asset_detail, name="asset"),
    path("assets/<int:serial>/approve", views.asset_approve, name="approve"),
    path("assets/<int:serial>/reject", views.asset_reject, name="reject"),
    path("assets/<int:serial>/publish", views.asset_publish, name="publish"),
    path("assets/<int:serial>/revoke", views.asset_revoke, name="revoke"),
    path("assets/<int:serial>/comment", views.asset_comment, name="comment"),
    path("assets/<int:serial>/compare", views.asset_compare, name="compare"),
    path("assets/<int:serial>/regenerate", views.asset_regenerate, name="regenerate"),
    path("audit/", views.audit_log, name="audit"),
    path("audit.csv", views.audit_csv, name="audit_csv"),
    path("verify/", views.verify_page, name="verify"),
    path("assets/<int:serial>/<str:kind>", views.asset_file, name="file"),
]
