"""The one small adapter between Django code and Prefect: start a campaign run.

Nothing in `review/` or `prompt_library/` imports a flow; they call this.
"""

from __future__ import annotations

from pydantic import ValidationError

from pipeline.run import RunSummary


class RunRequestError(ValueError):
    """Campaign-run parameters that the flow would refuse."""


def campaign_run_local(*, campaign: str, batch_size: int) -> RunSummary:
    """Run the campaign-run flow in this process (Prefect's local mode unless PREFECT_API_URL
    points at a server), and return its summary. Bad parameters are refused before Prefect starts."""
    from pipeline.flows import CampaignRunParams, campaign_run

    try:
        params = CampaignRunParams(campaign=campaign, batch_size=batch_size)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']} (given: {e.get('input')!r})" for e in exc.errors()
        )
        raise RunRequestError(f"campaign run refused: {problems}") from exc
    result = campaign_run(params)
    return RunSummary(**result)  # type: ignore[arg-type]
