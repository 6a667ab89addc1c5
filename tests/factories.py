"""factory_boy factories for the Django models (test data without fixture files)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from prompt_library.models import Campaign, PromptTemplate, PromptVersion
from prompt_library.specs import OutputSpec, RenditionSpec, TemplateSpec
from review.models import Asset
from review.states import AssetState


def template_spec(name: str = "hero", number: int = 1, **overrides: object) -> TemplateSpec:
    fields: dict[str, object] = {
        "name": name,
        "number": number,
        "description": "",
        "prompt": "a {product} on {scene}",
        "negative_prompt": "blurry",
        "variables": ("product", "scene"),
        "model_name": "embedded-tiny",
        "model_manifest_hash": None,
        "params": {},
        "output": OutputSpec(
            width=512, height=512, renditions=(RenditionSpec(name="web", format="jpeg", width=384, height=384),)
        ),
    }
    fields.update(overrides)
    return TemplateSpec(**fields)  # type: ignore[arg-type]


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"reviewer{n}")
    password = factory.django.Password("pw-for-tests")


def make_user(**fields: object) -> User:
    """A saved user (password "pw-for-tests"), typed for the services it is passed to."""
    user: User = UserFactory.create(**fields)
    return user


class PromptTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromptTemplate
        django_get_or_create = ("name",)

    name = "hero"


class PromptVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PromptVersion

    template = factory.SubFactory(PromptTemplateFactory)
    number = factory.Sequence(lambda n: n + 1)
    prompt = "a {product} on {scene}"
    negative_prompt = "blurry"
    model_name = "embedded-tiny"
    model_manifest_hash = "0" * 64
    params = factory.LazyFunction(lambda: {"steps": 4, "guidance": 1.0, "width": 64, "height": 64})
    spec = factory.LazyAttribute(lambda o: asdict(template_spec(o.template.name, o.number)))
    content_hash = factory.LazyAttribute(lambda o: template_spec(o.template.name, o.number).content_hash)


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"campaign-{n}")
    prompt_version = factory.SubFactory(PromptVersionFactory)
    variables = factory.LazyFunction(lambda: {"product": ["mug"], "scene": ["a table"]})
    seeds = factory.LazyFunction(lambda: [1])


class AssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Asset

    key = factory.Sequence(lambda n: hashlib.sha256(f"asset-{n}".encode()).hexdigest())
    campaign = factory.SubFactory(CampaignFactory)
    prompt_version = factory.LazyAttribute(lambda o: o.campaign.prompt_version)
    state = AssetState.IN_REVIEW
    variables = factory.LazyFunction(lambda: {"product": "mug", "scene": "a table"})
    prompt = "a mug on a table"
    negative_prompt = "blurry"
    seed = factory.Sequence(lambda n: n)
    steps = 4
    guidance = 1.0
    width = 512
    height = 512
    model_name = "embedded-tiny"
    model_manifest_hash = "0" * 64
    alt_text = "A mug on a table"
