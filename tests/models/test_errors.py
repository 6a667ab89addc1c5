"""The models package's errors: one tree, and each keeps its context when pickled to another process."""

from __future__ import annotations

import pickle
from pathlib import Path

from models.errors import (
    CatalogError,
    DeviceError,
    ManifestError,
    ModelError,
    ModelFolderError,
    ModelIntegrityError,
    ModelNotFoundError,
    SchedulerError,
    TrainingError,
)


def test_errors_keep_their_context_across_processes() -> None:
    errors: list[ModelError] = [
        ModelNotFoundError("x", known=["embedded-tiny"]),
        ModelNotFoundError("x", known=["sd-turbo"], kind="template"),
        ModelFolderError(Path("models/x"), "has no model_index.json"),
        ManifestError(Path("m.yaml"), "field 'files' is missing"),
        ModelIntegrityError(name="x", manifest_path=Path("m.yaml"), file="a.bin", expected="0" * 64, actual=None),
        DeviceError(setting="GREENLIGHT_DEVICE", value="tpu", problem="expected cpu, cuda, cuda:N or auto"),
        SchedulerError(name="dpm++-karras", problem="Karras spacing does not suit"),
        CatalogError(field="colour", value="teal", known=("red", "blue")),
        TrainingError(setting="sampler", value="heun", problem="expected one of euler, dpm++"),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and vars(copy) == vars(error)


def test_refusals_name_the_setting_and_the_value() -> None:
    assert str(SchedulerError(name="dpm++-karras", problem="unsuited")) == "scheduler = 'dpm++-karras': unsuited"
    assert str(CatalogError(field="colour", value="teal", known=("red", "blue"))) == (
        "unknown colour 'teal' (known: red, blue)"
    )
    assert str(TrainingError(setting="sampler", value="heun", problem="expected one of euler")) == (
        "sampler = 'heun': expected one of euler"
    )
