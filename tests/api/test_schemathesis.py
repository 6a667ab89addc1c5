"""schemathesis against the API's own live schema, on a real server started by this test.

Every operation is called with data generated from the schema (valid and invalid: the examples,
fuzzing and stateful phases; bounded so the test stays around a minute on two shared cores), with
a token whose user has every role. The run must find no server error (5xx) and no answer that
breaks the schema (status, content type, body). The run's summary line is printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from pytest_django.live_server_helper import LiveServer

from api.tokens import api_token_create
from review.models import Asset
from review.services import asset_approve, asset_publish
from tests.factories import AssetFactory, make_user
from tests.fixture_types import SettingsWrapper

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES_PER_OPERATION = 4
TIMEOUT_SECONDS = 240
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
# The event stream follows a run for minutes by design; its own test follows one to the end.
EXCLUDED = ["/api/v1/runs/{run_id}/events"]


def submitted(**kwargs: object) -> str:
    """The orchestrator's submit functions, here: nothing is generated while fuzzing."""
    return "not started (schema test)"


def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    live_server: LiveServer,
    greenlight_settings: SettingsWrapper,
    library_dir: Path,
    reviewable_assets: Sequence[Asset],
    tmp_path: Path,
) -> None:
    greenlight_settings.GREENLIGHT_RUN_SUBMIT = "tests.api.test_schemathesis.submitted"
    greenlight_settings.GREENLIGHT_CAMPAIGN_RUN_SUBMIT = "tests.api.test_schemathesis.submitted"
    everything = make_user(roles=("admin",), username="fuzz")
    approved = asset_approve(asset=reviewable_assets[1], reviewer=make_user(username="vera", roles=("reviewer",)))
    asset_publish(asset=approved, user=everything)
    for _ in range(3):
        AssetFactory.create()
    token = api_token_create(user=everything, name="schemathesis").plaintext
    command = [
        str(Path(sys.executable).parent / "st"),
        "run",
        f"{live_server.url}/api/v1/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--phases",
        "examples,fuzzing,stateful",
        "--max-examples",
        str(EXAMPLES_PER_OPERATION),
        "--seed",
        "20261202",
        "--request-timeout",
        "20",
        "--workers",
        "1",
        "--no-shrink",
        "--suppress-health-check",
        "all",
    ]
    for path in EXCLUDED:
        command += ["--exclude-path", path]
    env = {**os.environ, "NO_COLOR": "1", "SCHEMATHESIS_HOOKS": ""}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, cwd=tmp_path, env=env, check=False
    )
    output = done.stdout + done.stderr
    cases = re.search(r"^\s*(\d+) generated, .*$", output, re.MULTILINE)
    summary = re.findall(r"^=+ (.*) in [0-9.]+s =+$", output, re.MULTILINE)
    print(f"schemathesis: {cases.group(0).strip() if cases else '?'} | {summary[-1] if summary else '?'}")
    assert done.returncode == 0, output[-6000:]
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) >= 29, output[-3000:]
    assert "Server error" not in output and "Response violates schema" not in output
    assert cases and int(cases.group(1)) > 100
