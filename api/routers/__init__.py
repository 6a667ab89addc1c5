"""The API's routers, one per resource, mounted in this order under /api/v1/.

To add a resource: write `api/routers/<resource>.py` with a `router = Router(tags=[...])` and add
one line below. Routers raise `api.problems.ApiProblem` (or let a service's error through: it is
turned into problem details by `api.problems.problem_from_error`) and wrap creating POSTs in
`api.idempotency.idempotent`.
"""

from __future__ import annotations

from ninja import Router

from api.routers import assets, audit, campaigns, insight, matrix, queue, sources, templates, verify, webhooks
from api.routers import requests as asset_requests

ROUTERS: list[Router] = [
    assets.router,
    queue.router,
    verify.router,
    audit.router,
    templates.router,
    campaigns.router,
    matrix.router,
    webhooks.router,
    asset_requests.router,
    sources.router,
    insight.router,
]
