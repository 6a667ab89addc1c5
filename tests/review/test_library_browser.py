"""End-to-end in a real browser: the prompt library (a diff of two versions, a new version made
in the browser, a CSV matrix import) and the production dashboard. The README's screenshots of
these pages are taken here (GREENLIGHT_SCREENSHOTS)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_django.live_server_helper import LiveServer

from prompt_library.models import Campaign, PromptVersion
from review.insight.refresh import insight_refresh
from review.models import Asset
from review.services import asset_approve
from tests.factories import make_user
from tests.review.insight.production import production_build
from tests.review.test_dashboard_browser import browser_available, browser_page, login, shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True, reset_sequences=True)]
__all__ = ["browser_available"]  # the autouse fixture that skips (or fails in CI) without a browser

NEW_PROMPT = "a {colour} {product} {scene}, soft window light"


def test_operator_makes_a_version_diffs_it_and_imports_a_matrix(
    live_server: LiveServer, catalog_assets: list[Asset], tmp_path: Path
) -> None:
    approver = make_user(username="ana", roles=("reviewer",))
    for asset in catalog_assets[:3]:
        asset_approve(asset=asset, reviewer=approver)
    make_user(username="olga", roles=("admin",))
    csv_file = tmp_path / "products.csv"
    csv_file.write_text("colour,product,scene\nred,mug,on a wooden table\nblue,lamp,on a shelf\ngreen,,\n")
    rows_file = tmp_path / "catalogue.csv"
    rows_file.write_text("product,colour\nmug,red\nlamp,blue\nvase,red\n")
    seeds = len(Campaign.objects.get(name="demo-catalog").seeds)
    with browser_page() as page:
        login(page, live_server, "olga")
        page.click("text=Prompt library")
        page.click("#templates >> text=catalog-scene")
        page.wait_for_selector("#contact-sheet")
        assert page.locator("#contact-sheet img").count() == 3
        page.click("#new-from-latest")
        text = page.input_value("textarea[name=text]")
        assert "prompt: a {colour} {product} {scene}" in text
        page.fill("textarea[name=text]", text.replace("prompt: a {colour} {product} {scene}", f"prompt: {NEW_PROMPT}"))
        shot(page, "library-new-version")
        page.click("#version-form button[type=submit]")
        page.wait_for_url("**/library/catalog-scene/v2/")
        assert "Saved catalog-scene v2." in page.inner_text(".message")
        assert NEW_PROMPT in page.inner_text(".spec")

        page.goto(f"{live_server.url}/library/catalog-scene/")
        page.select_option("select[name=a]", "1")
        page.select_option("select[name=b]", "2")
        page.click("#diff-form button[type=submit]")
        page.wait_for_selector("#text-diff")
        assert page.inner_text("#text-diff .new .w-added") == ", soft window light"
        assert "prompt" in page.inner_text("#changed")
        shot(page, "library-diff")

        page.goto(f"{live_server.url}/library/campaigns/demo-catalog/matrix")
        page.set_input_files("input[name=file]", str(csv_file))
        page.click("#matrix-form button[type=submit]")
        page.wait_for_selector("#preview")
        # 3 colours x 2 products x 2 scenes, times the campaign's seeds.
        assert page.inner_text("#variant-count") == str(3 * 2 * 2 * seeds)
        shot(page, "library-matrix")
        page.click("#save-form button[type=submit]")
        page.wait_for_selector(".message")
        assert f"{3 * 2 * 2 * seeds} variants on its next run" in page.inner_text(".message")

        # One row per product with its attributes: those rows only, times the campaign's scenes.
        page.set_input_files("input[name=file]", str(rows_file))
        page.click("#matrix-form button[type=submit]")
        page.wait_for_selector("#preview-rows")
        assert "one row per product" in page.inner_text("#layout-read")
        assert page.inner_text("#variant-count") == str(3 * 2 * seeds)
        assert page.locator("#preview-rows tbody tr").count() == 3
        shot(page, "library-matrix-rows")
        page.click("#save-form button[type=submit]")
        page.wait_for_selector(".message")
        assert f"{3 * 2 * seeds} variants on its next run" in page.inner_text(".message")

    version = PromptVersion.objects.get(template__name="catalog-scene", number=2)
    assert version.prompt == NEW_PROMPT and version.created_by is not None
    campaign = Campaign.objects.get(name="demo-catalog")
    assert campaign.variables["product"] == ["mug", "lamp", "vase"]
    assert campaign.variable_rows[2] == {"colour": "red", "product": "vase"}


def test_the_dashboard_in_a_browser(live_server: LiveServer) -> None:
    production = production_build(copies=4)
    insight_refresh()
    make_user(username="olga", roles=("admin",))
    with browser_page() as page:
        login(page, live_server, "olga")
        page.click("nav >> text=Dashboard")
        page.wait_for_selector("#headline")
        page.select_option("select[name=a]", str(production.v1.pk))
        page.select_option("select[name=b]", str(production.v2.pk))
        page.click("#insight-filters button[type=submit]")
        page.wait_for_selector("#ab-verdict")
        # 8 of 16 against 12 of 16 on the same scenes: the smallest expected count is 16·12/32 = 6,
        # so the z-test: pooled 20/32, se = sqrt(0.625·0.375·2/16) = 0.1712, z = -0.25/0.1712 =
        # -1.461, p = 0.144.
        assert page.inner_text("#ab-verdict") == "no significant difference (p = 0.144, two-proportion z-test)"
        assert page.inner_text("#past-deadline") == "4"
        assert page.locator("svg.chart").count() >= 14
        shot(page, "dashboard")
        with page.expect_download() as download:
            page.click("#panel-approval_version a.csv")
        assert download.value.suggested_filename == "approval_version.csv"
        lines = Path(download.value.path()).read_text().splitlines()
        assert lines[1].startswith("hero v1,8,8,16,0.5,")

        # From D2 only: v1's a4 (city, rejected) x 4 against v2's b3 (approved) and b4 (rejected)
        # x 4 on city, the one scene both have: 0 of 4 against 4 of 8. The smallest expected count
        # is 4·4/12 < 5: Fisher, P(x) = C(4,x)·C(8,4-x)/495 = 70, 224, 168, 32, 1 for x = 0..4;
        # observed x = 0 (70), no likelier: 70 + 32 + 1 = 103 of 495, p = 0.208.
        page.fill("input[name=date_from]", "2026-03-02")
        page.click("#insight-filters button[type=submit]")
        page.wait_for_selector("#ab-verdict")
        assert page.inner_text("#ab-verdict") == "no significant difference (p = 0.208, Fisher exact test)"
        assert page.inner_text("#past-deadline") == "4"
