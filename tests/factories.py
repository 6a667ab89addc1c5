"""factory_boy factories for the Django models (test data without fixture files)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import factory
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, User

from infra.dev_certs import certificate_builder, key_usage
from prompt_library.models import Campaign, PromptTemplate, PromptVersion
from prompt_library.specs import OutputSpec, RenditionSpec, TemplateSpec
from provenance.keys import SigningFiles
from review.models import Asset, queue_position
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


def make_user(roles: tuple[str, ...] = ("reviewer", "publisher"), **fields: object) -> User:
    """A saved user (password "pw-for-tests") in the given role groups."""
    user: User = UserFactory.create(**fields)
    user.groups.set(Group.objects.filter(name__in=roles))
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
    # As `assets_register` does: the claim order comes from the campaign.
    queue_priority = factory.LazyAttribute(lambda o: queue_position(o.campaign)[0])
    queue_deadline = factory.LazyAttribute(lambda o: queue_position(o.campaign)[1])


def chain_write(
    directory: Path,
    *,
    signer_not_before: datetime,
    signer_not_after: datetime,
    key_new: Callable[[], CertificateIssuerPrivateKeyTypes] = lambda: ec.generate_private_key(ec.SECP256R1()),
    digest: hashes.SHA256 | hashes.SHA384 | None = None,
) -> SigningFiles:
    """A root -> intermediate -> signer chain with chosen signer validity, its keys made by
    ``key_new`` (ECDSA P-256 by default), its certificates signed with ``digest`` (SHA-256 by
    default; None where the key type takes none, as Ed25519)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    keys = [key_new() for _ in range(3)]
    if digest is None and isinstance(keys[0], ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        digest = hashes.SHA256()
    names = [
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        for cn in ("Test Root", "Test Intermediate", "Test Signer")
    ]
    certs: list[x509.Certificate] = []
    for index, (key, name) in enumerate(zip(keys, names, strict=True)):
        issuer_index = max(index - 1, 0)
        is_ca = index < 2
        builder = certificate_builder(
            name,
            names[issuer_index],
            key.public_key(),
            signer_not_before if not is_ca else now - timedelta(days=3650),
            signer_not_after if not is_ca else now + timedelta(days=3650),
        ).add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        builder = builder.add_extension(key_usage(cert_sign=is_ca), critical=True)
        if index:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(keys[issuer_index].public_key()), critical=False
            )
        if not is_ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            )
        certs.append(builder.sign(keys[issuer_index], digest))
    pem = serialization.Encoding.PEM
    files = SigningFiles(
        chain=directory / "chain.pem",
        key=directory / "signer.key",
        trust_anchors=directory / "root.pem",
    )
    files.chain.write_bytes(certs[2].public_bytes(pem) + certs[1].public_bytes(pem))
    files.trust_anchors.write_bytes(certs[0].public_bytes(pem))
    files.key.write_bytes(keys[2].private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return files


def library_empty(library: Path) -> Path:
    """A prompt library folder with every template and campaign taken out (for a test that
    writes its own): the folder."""
    for child in (library / "templates").iterdir():
        shutil.rmtree(child)
    for campaign in (library / "campaigns").iterdir():
        campaign.unlink()
    return library


def clip_campaign_write(
    library: Path,
    *,
    template: str = "test-clip",
    campaign: str = "test-clips",
    model: str = "embedded",
    output: Mapping[str, object] | None = None,
    params: Mapping[str, object] | None = None,
    seeds: tuple[int, ...] = (1,),
) -> None:
    """A clip template (v1) and a campaign of it in a prompt library folder: by default a cheap
    keyframe clip of the shipped embedded model (12 steps, 1 s at 8 fps, 2 keyframes, 256x256 MP4)
    with a web MP4 and a JPEG poster as renditions, for two colours of one mug."""
    spec = {
        "name": template,
        "description": "A short test clip.",
        "prompt": "a {colour} {product} {scene}",
        "alt_text": "Test clip: a {colour} {product} {scene}",
        "variables": ["colour", "product", "scene"],
        "model": model,
        "params": dict(params) if params is not None else {"steps": 12, "guidance": 7.0},
        "output": dict(output)
        if output is not None
        else {
            "width": 256,
            "height": 256,
            "format": "mp4",
            "fps": 8,
            "seconds": 1,
            "keyframes": 2,
            "renditions": [
                {"name": "web", "format": "mp4", "width": 256, "height": 256, "quality": 85},
                {"name": "poster", "format": "jpeg", "width": 256, "height": 256, "quality": 85},
            ],
        },
    }
    folder = library / "templates" / template
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "v1.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    runs = {
        "name": campaign,
        "title": "Test clips",
        "kind": "scheduled",
        "template": template,
        "template_version": 1,
        "variables": {"colour": ["red", "blue"], "product": ["mug"], "scene": ["on a wooden table"]},
        "seeds": list(seeds),
    }
    (library / "campaigns" / f"{campaign}.yaml").write_text(yaml.safe_dump(runs, sort_keys=False))
