from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.test import Client

from prompt_library.models import Campaign, PromptVersion
from prompt_library.services import library_load
from review.audit import AuditAction
from review.models import AuditEvent
from tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(client: Client, library_dir: Path) -> Client:
    library_load()
    client.force_login(make_user(roles=("operator",), username="olga"))
    return client


def _v1_text() -> str:
    return PromptVersion.objects.get(template__name="catalog-hero", number=1).spec["prompt"]


def test_the_library_lists_templates_and_a_template_shows_every_version_in_full(operator: Client) -> None:
    page = operator.get("/library/")
    assert page.status_code == 200 and b"catalog-hero" in page.content
    detail = operator.get("/library/catalog-hero/")
    assert detail.status_code == 200
    text = detail.content.decode()
    assert _v1_text() in text and "blurry, text, watermark, extra objects" in text and "demo-spring" in text


def test_a_new_version_from_pasted_yaml_is_saved_and_the_diff_shows_the_change(operator: Client) -> None:
    start = operator.get("/library/new?template=catalog-hero&from=1")
    text = start.context["form"].initial["text"]
    changed = text.replace("{style}", "{style}, golden hour")
    answer = operator.post("/library/new", {"template": "catalog-hero", "fmt": "yaml", "text": changed})
    assert answer.status_code == 302 and answer["Location"] == "/library/catalog-hero/v2/"
    version = PromptVersion.objects.get(template__name="catalog-hero", number=2)
    assert version.created_by is not None and version.created_by.username == "olga"
    assert AuditEvent.objects.filter(action=AuditAction.PROMPT_VERSION_CREATED, actor__username="olga").exists()
    diff = operator.get("/library/catalog-hero/diff?a=1&b=2")
    assert diff.status_code == 200
    assert diff.context["diff"].changed_fields == ("prompt",)
    assert b'<span class="w-added">, golden hour</span>' in diff.content
    exported = operator.get("/library/catalog-hero/v2.yaml")
    assert yaml.safe_load(exported.content)["prompt"] == "a {product} on {scene}, {style}, golden hour"


@pytest.mark.parametrize(
    ("post", "needle"),
    [
        (
            {"template": "catalog-hero", "fmt": "yaml", "text": "name: catalog-hero\nprompt: ''"},
            "field 'prompt' is empty",
        ),
        ({"template": "catalog-hero", "fmt": "xml", "text": "x"}, "fmt"),
        ({"template": "catalog-hero", "fmt": "yaml", "text": "a: [1"}, "field 'text' is not valid YAML"),
    ],
)
def test_a_refused_version_answers_400_naming_the_field(operator: Client, post: dict[str, str], needle: str) -> None:
    before = PromptVersion.objects.count()
    answer = operator.post("/library/new", post)
    assert answer.status_code == 400
    assert needle in answer.content.decode().replace("&#x27;", "'")
    assert PromptVersion.objects.count() == before


def test_a_diff_of_versions_that_are_not_numbers_answers_400(operator: Client) -> None:
    assert operator.get("/library/catalog-hero/diff?a=1&b=%C2%B2").status_code == 400
    assert operator.get("/library/catalog-hero/diff?a=1&b=9").status_code == 404


def test_reviewers_read_the_library_but_cannot_write_it(client: Client, library_dir: Path) -> None:
    library_load()
    client.force_login(make_user(roles=("reviewer",), username="rita"))
    assert client.get("/library/catalog-hero/").status_code == 200
    assert client.get("/library/new").status_code == 403
    assert client.post("/library/parts/", {"kind": "style", "name": "x", "text": "y"}).status_code == 403


def test_a_style_part_is_made_in_the_browser_and_shown(operator: Client) -> None:
    answer = operator.post("/library/parts/", {"kind": "style", "name": "house", "text": "pastel studio light"})
    assert answer.status_code == 302
    assert b"pastel studio light" in operator.get("/library/parts/").content


def test_the_version_page_shows_the_resolved_prompt_before_a_run(operator: Client) -> None:
    page = operator.get("/library/catalog-hero/v1/")
    assert page.status_code == 200
    resolved = page.context["resolved"]
    assert resolved[0].campaign == "demo-spring"
    assert "{" not in resolved[0].prompt and resolved[0].variants == 12


def test_a_csv_matrix_is_previewed_with_its_variant_count_then_saved(operator: Client) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    campaign = Campaign.objects.get(name="demo-spring")
    seeds = len(campaign.seeds)
    csv = "product,scene,style\nmug,a table,studio\nlamp,a shelf,\nbottle,,\n"
    preview = operator.post(
        "/library/campaigns/demo-spring/matrix",
        {"layout": "columns", "action": "preview", "file": SimpleUploadedFile("m.csv", csv.encode())},
    )
    assert preview.status_code == 200
    # 3 products x 2 scenes x 1 style, times the campaign's seeds.
    assert preview.context["preview"].variant_count == 3 * 2 * 1 * seeds
    assert Campaign.objects.get(name="demo-spring").variables == campaign.variables  # nothing saved yet
    saved = operator.post("/library/campaigns/demo-spring/matrix", {"layout": "columns", "action": "save", "csv": csv})
    assert saved.status_code == 302
    assert Campaign.objects.get(name="demo-spring").variables == {
        "product": ["mug", "lamp", "bottle"],
        "scene": ["a table", "a shelf"],
        "style": ["studio"],
    }
    assert AuditEvent.objects.filter(action=AuditAction.CAMPAIGN_VARIABLES_IMPORTED).count() == 1


@pytest.mark.parametrize(
    ("csv", "layout", "needle"),
    [
        ("product,colour\nmug,red\n", "columns", "field 'header' is product, colour"),
        ("product,scene,style\nmug,,x\n", "rows", "line 2, column 'scene' (''): empty"),
        ("product,scene,style\nmug,a,x\n\nlamp,b,x,y\n", "rows", "line 4, column '#4' ('y'): the header has 3"),
        ("product,scene,style\n" + "m," * 2 + "x" * 300 + "\n", "columns", "at most 200"),
        ("product,scene,style\n", "columns", "needs a header row and at least one row"),
        ("product,scene,style\nmug,a,b\n", "diagonal", "layout"),
        ("product,weight\nmug,300g\n", "auto", "line 1, column 2 ('weight'): not a variable"),
    ],
)
def test_a_refused_matrix_answers_400_naming_the_field(operator: Client, csv: str, layout: str, needle: str) -> None:
    answer = operator.post("/library/campaigns/demo-spring/matrix", {"layout": layout, "action": "save", "csv": csv})
    assert answer.status_code == 400
    assert needle in answer.content.decode().replace("&#x27;", "'")
    assert not AuditEvent.objects.filter(action=AuditAction.CAMPAIGN_VARIABLES_IMPORTED).exists()


def test_a_csv_of_products_with_attributes_makes_those_rows_only(operator: Client) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    campaign = Campaign.objects.get(name="demo-spring")
    seeds, scenes = len(campaign.seeds), len(campaign.variables["scene"])
    csv = "product,style\nmug,studio\nlamp,studio\nbottle,pastel\n"
    preview = operator.post(
        "/library/campaigns/demo-spring/matrix",
        {"layout": "auto", "action": "preview", "file": SimpleUploadedFile("p.csv", csv.encode())},
    )
    assert preview.status_code == 200
    shown = preview.context["preview"]
    # Detected as rows (the header leaves scene to the campaign): 3 rows x the scenes, x the seeds.
    assert shown.layout == "rows" and shown.kept == ("scene",)
    assert shown.variant_count == 3 * scenes * seeds
    html = preview.content.decode()
    assert 'id="preview-rows"' in html and "<td>bottle</td><td>pastel</td>" in html
    # The save form carries the layout that was read, not "auto".
    assert preview.context["form"].initial["layout"] == "rows"
    saved = operator.post("/library/campaigns/demo-spring/matrix", {"layout": "rows", "action": "save", "csv": csv})
    assert saved.status_code == 302
    row = Campaign.objects.get(name="demo-spring")
    assert row.variable_rows == [
        {"product": "mug", "style": "studio"},
        {"product": "lamp", "style": "studio"},
        {"product": "bottle", "style": "pastel"},
    ]
    assert row.variables["style"] == ["studio", "pastel"] and row.variables["scene"] == campaign.variables["scene"]
    page = operator.get("/library/campaigns/demo-spring/matrix")
    assert "3 linked rows" in page.content.decode()
