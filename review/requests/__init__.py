"""Marketing asset requests: a requester's brief, checked whole and stored unchanged, becomes a
request campaign whose run starts through `review.services.runs`; its approved assets leave as a
zip (`review.delivery`) and its events reach people through `review.notifications`.

- models: the request, its immutable briefs, notifications
- briefs: checking a brief (every field, and the preflight the web process can do)
- services: `request_create`, `request_more`, `request_cancel`, `request_access_check`
- selectors: a user's requests, one request's progress, the templates the form offers
- forms, signals: the pages' forms; a request is checked when one of its assets or runs changes
"""
