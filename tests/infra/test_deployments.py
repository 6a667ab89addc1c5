from __future__ import annotations

from typing import cast

import pytest
from prefect.deployments.runner import RunnerDeployment
from pydantic import ValidationError

from infra.deployments import DEPLOYMENT_NAME
from infra.flows import campaign_run
from pipeline.params import CampaignRunParams


def test_the_deployment_takes_one_validated_parameter_model() -> None:
    deployment = cast(RunnerDeployment, campaign_run.to_deployment(name=DEPLOYMENT_NAME))
    schema = deployment._parameter_openapi_schema.model_dump()
    assert schema["required"] == ["params"]
    definition = schema["definitions"]["CampaignRunParams"]
    assert definition["properties"]["batch_size"]["minimum"] == 1
    assert definition["properties"]["batch_size"]["maximum"] == 64


@pytest.mark.parametrize("bad", [{"campaign": "", "batch_size": 8}, {"campaign": "x", "batch_size": 65}])
def test_bad_parameters_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CampaignRunParams.model_validate(bad)
