"""The parameters of each flow, one pydantic model per flow: Prefect validates a flow run's
parameters against them, and `params_validate` refuses bad ones before Prefect is even started."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, Field, ValidationError

from pipeline.errors import RunRequestError, value_shown

MAX_SERIALS = 1000  # registered assets per assets-generate run


class CampaignRunParams(BaseModel):
    """Parameters of the campaign-run flow: a campaign by name, and the batch size."""

    campaign: str = Field(min_length=1, max_length=100, pattern=r"^[-a-zA-Z0-9_]+$")
    batch_size: int = Field(default=8, ge=1, le=64)


class AssetsGenerateParams(BaseModel):
    """Parameters of the assets-generate flow: registered assets (by serial) to generate."""

    serials: list[int] = Field(min_length=1, max_length=MAX_SERIALS)
    batch_size: int = Field(default=8, ge=1, le=64)


_P = TypeVar("_P", bound=BaseModel)


def params_validate(model: type[_P], *, what: str, **values: object) -> _P:
    """``values`` as ``model``, or a `RunRequestError` naming the first field refused and its
    value (the message lists every problem)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        errors = exc.errors()
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))} = {value_shown(e.get('input'))}: {e['msg']}" for e in errors
        )
        first = errors[0]
        raise RunRequestError(
            f"{what} refused: {problems}", field_name=".".join(map(str, first["loc"])), value=first.get("input")
        ) from exc
