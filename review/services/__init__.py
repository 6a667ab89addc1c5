"""Services: the only code that changes an asset's state, by sub-domain.

Each state change runs in a transaction that locks the asset row and writes an audit event, so
the audit log and the asset table never disagree. Every refusal is a `ReviewError`
(`review.errors`); a value a user gave that a service refuses is a `ReviewInputError` naming the
field and the value. The pipeline's own door into review is `review.intake`, not this package.

- claims: a reviewer leases the next asset to review (`review_task_claim`), or gives it back
- decisions: approve, reject (one or many), with the campaign's quorum
- publication: signed renditions to the publish target (recorded before they are written), the
  publish webhook, revocation, and the sweeper that rolls back publications a dead process left
- comments: remarks kept in an asset's history
- regeneration: new variants of a rejected asset
"""

from __future__ import annotations

from review.services.claims import LEASE, campaign_queue_sync, review_task_claim, review_task_release
from review.services.comments import COMMENT_MAX, asset_comment
from review.services.decisions import BulkResult, asset_approve, asset_reject, assets_decide_bulk
from review.services.publication import (
    PUBLISH_GRACE,
    PublicationSweep,
    asset_publish,
    asset_revoke,
    publications_sweep,
)
from review.services.regeneration import REGENERATE_MAX, asset_regenerate

__all__ = [
    "COMMENT_MAX",
    "LEASE",
    "PUBLISH_GRACE",
    "REGENERATE_MAX",
    "BulkResult",
    "PublicationSweep",
    "asset_approve",
    "asset_comment",
    "asset_publish",
    "asset_regenerate",
    "asset_reject",
    "asset_revoke",
    "assets_decide_bulk",
    "campaign_queue_sync",
    "publications_sweep",
    "review_task_claim",
    "review_task_release",
]
