"""Every key of a template or campaign file is known: an unknown one is refused by name, with its file."""

from __future__ import annotations

from pathlib import Path

import pytest

from prompt_library.errors import LibraryFileError
from prompt_library.models import PromptVersion
from prompt_library.parsing import campaign_parse, template_parse
from prompt_library.services import library_load
from tests.prompt_library.library_data import PATH, template_data

CAMPAIGN = {
    "name": "spring",
    "template": "hero",
    "template_version": 1,
    "variables": {"product": ["mug"], "scene": ["a table"]},
    "seeds": [1],
}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"init_imge": "photo.png"}, "init_imge"),
        ({"ip_adapter": [{"name": "brand"}]}, "ip_adapter"),
        ({"model": {"name": "embedded-tiny", "revision": "main"}}, "model.revision"),
        ({"params": {"steps": 4, "cfg": 7}}, "params.cfg"),
        ({"output": {"width": 512, "height": 512, "upscaler": "x4"}}, "output.upscaler"),
        (
            {
                "output": {
                    "width": 512,
                    "height": 512,
                    "renditions": [{"name": "w", "format": "jpeg", "width": 9, "height": 9, "dpi": 72}],
                }
            },
            "output.renditions[0].dpi",
        ),
    ],
)
def test_an_unknown_template_key_is_refused_naming_key_and_file(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(LibraryFileError) as err:
        template_parse(template_data(**overrides), path=PATH, number=1)
    assert str(PATH) in str(err.value)
    assert f"unknown key '{field}'" in str(err.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"seed": [1]}, "seed"),
        ({"review": {"approvals": 2, "quorum": 2}}, "review.quorum"),
    ],
)
def test_an_unknown_campaign_key_is_refused_naming_key_and_file(overrides: dict[str, object], field: str) -> None:
    path = Path("library/campaigns/spring.yaml")
    with pytest.raises(LibraryFileError) as err:
        campaign_parse({**CAMPAIGN, **overrides}, path=path)
    assert str(path) in str(err.value)
    assert f"unknown key '{field}'" in str(err.value)


@pytest.mark.django_db
def test_loading_a_library_with_an_unknown_key_writes_nothing(library_dir: Path) -> None:
    path = library_dir / "templates" / "catalog-hero" / "v1.yaml"
    path.write_text(path.read_text() + "strenght: 0.6\n")
    with pytest.raises(LibraryFileError, match=r"catalog-hero/v1\.yaml: unknown key 'strenght'"):
        library_load()
    assert not PromptVersion.objects.exists()
