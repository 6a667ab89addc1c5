"""Finalising an image or a clip: watermarked (every frame of a clip, H.264 that keeps the mark),
C2PA-signed master, signed JPEG thumbnail (of a clip's first frame) that never fails the asset;
real model, real signing, real files."""

from __future__ import annotations

import hashlib
import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from models import ModelManifest
from pipeline import finalize as finalize_module
from pipeline.finalize import (
    MARK_ID_DRAWS,
    MASTER_CRFS,
    THUMBNAIL,
    Signing,
    clip_encode,
    clip_finalize,
    image_finalize,
)
from pipeline.video import clips_generate
from prompt_library.expansion import campaign_expand
from prompt_library.parsing import template_parse
from prompt_library.specs import CampaignSpec, GenerationParams, Variant
from provenance.credentials import c2pa_read
from provenance.errors import WatermarkCapacityError, WatermarkError
from provenance.media import WATERMARK_FRAMES
from provenance.mp4 import Clip, mp4_clip, mp4_decode, mp4_encode
from provenance.renditions import thumbnail_sizes
from provenance.storage import LocalStorage
from provenance.watermark import SERIAL_MAX, watermark_embed, watermark_payload, watermark_read, watermark_read_frames
from provenance.watermark_keys import WatermarkKey
from tests.provenance.samples import BUSY, photograph, product_shot

SERIAL = 4242
MARK_ID = 0x5A_1234_9876  # what the mark carries: the asset's random mark id, not its serial


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """Every test here runs on one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="module")
def clip_variant(embedded: tuple[Any, ModelManifest]) -> Variant:
    """A variant of a short clip template on the shipped embedded model (1 s at 12 fps)."""
    manifest = embedded[1]
    data = {
        "name": "clip",
        "prompt": "a {colour} mug on a wooden table",
        "variables": ["colour"],
        "model": "embedded",
        "output": {"width": 256, "height": 256, "format": "mp4", "fps": 12, "seconds": 1, "keyframes": 2},
    }
    template = template_parse(data, path=Path("clip/v1.yaml"), number=1)
    runs = CampaignSpec(
        name="clips",
        title="",
        kind="scheduled",
        template="clip",
        template_version=1,
        variables=(("colour", ("red",)),),
        seeds=(3,),
    )
    params = GenerationParams(steps=4, guidance=7.0, width=64, height=64)
    return campaign_expand(runs, template, params=params, model_manifest_hash=manifest.manifest_hash)[0]


def still_variant(side: int) -> Variant:
    """A variant of a square PNG template (no model is run: the image is given)."""
    data = {
        "name": "still",
        "prompt": "a {colour} mug on a wooden table",
        "variables": ["colour"],
        "model": "embedded",
        "output": {"width": side, "height": side, "format": "png"},
    }
    template = template_parse(data, path=Path("still/v1.yaml"), number=1)
    runs = CampaignSpec(
        name="stills",
        title="",
        kind="scheduled",
        template="still",
        template_version=1,
        variables=(("colour", ("red",)),),
        seeds=(5,),
    )
    params = GenerationParams(steps=4, guidance=7.0, width=side, height=side)
    return campaign_expand(runs, template, params=params, model_manifest_hash="sha256:" + "ab" * 32)[0]


def finalised_thumbnail(made: Any, storage: LocalStorage, context: Any, key: WatermarkKey) -> tuple[bytes, Any]:
    """The stored thumbnail and its C2PA report, after checking what every thumbnail must be:
    signed with the master as parent, trusted, at the size the signed record gives, claiming
    a watermark only where the serial reads back from it (and a new one only where it was
    marked again at that size)."""
    master = storage.read(made.file_path)
    master_report = c2pa_read(master, mime=made.mime, context=context)
    assert master_report.state == "trusted", master_report.validation_codes
    assert master_report.assertion("org.greenlight.generation") == made.generation_record
    recorded = made.generation_record["thumbnail"]

    thumb = storage.read(made.thumb_path)
    report = c2pa_read(thumb, mime="image/jpeg", context=context)
    assert report.state == "trusted", report.validation_codes
    parents = [i for i in (report.manifest or {}).get("ingredients", []) if i.get("relationship") == "parentOf"]
    assert len(parents) == 1 and parents[0]["format"] == made.mime
    assert [m.kind for m in made.manifests] == ["master", "thumbnail"]
    assert made.manifests[1].label == report.active_label

    image = Image.open(io.BytesIO(thumb)).convert("RGB")
    assert image.size == (recorded["width"], recorded["height"])
    assert recorded["watermark"] in ("own", "master", "none")
    reading = watermark_read(image, key=key.secret).serial
    binding = report.assertion("c2pa.soft-binding")
    if recorded["watermark"] == "none":
        assert binding is None and "c2pa.watermarked" not in report.actions()
    else:
        assert reading == MARK_ID
        assert binding is not None and binding["blocks"][0]["value"] == watermark_payload(MARK_ID)
        assert binding["name"].endswith(key.key_id) and key.secret not in str(binding)
        assert ("c2pa.watermarked" in report.actions()) == (recorded["watermark"] == "own")
    return thumb, report


@pytest.mark.parametrize(("name", "side"), BUSY)
def test_a_busy_photograph_is_finalised_with_a_thumbnail_that_records_its_size_and_mark(
    name: str, side: int, signer: Any, context: Any, tmp_path: Path, mark_key: WatermarkKey
) -> None:
    storage = LocalStorage(tmp_path)
    variant = still_variant(side)

    made = image_finalize(
        variant,
        serial=SERIAL,
        mark_id=MARK_ID,
        image=photograph(name, side),
        signing=Signing(signer=signer, context=context, watermark=mark_key),
        storage=storage,
    )

    assert made.mime == "image/png"
    master = storage.read(made.file_path)
    assert watermark_read(Image.open(io.BytesIO(master)).convert("RGB"), key=mark_key.secret).serial == MARK_ID
    finalised_thumbnail(made, storage, context, mark_key)
    recorded = made.generation_record["thumbnail"]
    assert (recorded["width"], recorded["height"]) in thumbnail_sizes(THUMBNAIL, (side, side))
    # Each of these carries the serial at some size up to the master's.
    assert recorded["watermark"] != "none"


def mark_ids_sorted(
    picture: Image.Image, key: WatermarkKey, *, refused: int, carried: int
) -> tuple[list[int], list[int]]:
    """Mark ids (from a fixed sequence) that ``picture`` refuses and that it carries, at least
    ``refused`` and ``carried`` of each (the key decides which are which)."""
    draws = random.Random(20)
    no: list[int] = []
    yes: list[int] = []
    while len(no) < refused or len(yes) < carried:
        assert len(no) + len(yes) < 200, f"the picture took {len(yes)} of {len(no) + len(yes)} mark ids"
        candidate = draws.randrange(1, SERIAL_MAX + 1)
        try:
            watermark_embed(picture, candidate, key=key.secret)
        except WatermarkError:
            no.append(candidate)
            continue
        yes.append(candidate)
    return no, yes


def fine_noise() -> Image.Image:
    """A 256 px picture of fine colour noise: it carries some mark ids and not others, how many
    depending on the key (7 to 14 of 16, and a session's random key once took 198 of 200), so
    the tests of refused ids mark it with ``NOISE_KEY``, under which it takes 9 of 16."""
    pixels = np.random.default_rng(3).integers(0, 256, (88, 88, 3), dtype=np.uint8)
    return Image.fromarray(pixels).resize((256, 256), Image.Resampling.BICUBIC)


NOISE_KEY = WatermarkKey(key_id="wk-fine-noise", secret=hashlib.sha256(b"fine-noise-1").hexdigest())


def test_a_picture_that_cannot_carry_its_assets_mark_id_is_marked_with_a_fresh_one_it_records(
    signer: Any, context: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picture, mark_key = fine_noise(), NOISE_KEY
    refused, carried = mark_ids_sorted(picture, mark_key, refused=2, carried=1)
    draws = iter([refused[1], carried[0]])  # the fresh ids drawn: one refused too, then one taken
    monkeypatch.setattr(finalize_module, "mark_id_new", lambda: next(draws))
    storage = LocalStorage(tmp_path)

    made = image_finalize(
        still_variant(256),
        serial=SERIAL,
        mark_id=refused[0],
        image=picture,
        signing=Signing(signer=signer, context=context, watermark=mark_key),
        storage=storage,
    )

    assert made.mark_id == carried[0]  # what the hand-over records on the asset
    master = storage.read(made.file_path)
    assert watermark_read(Image.open(io.BytesIO(master)).convert("RGB"), key=mark_key.secret).serial == carried[0]
    binding = c2pa_read(master, mime="image/png", context=context).assertion("c2pa.soft-binding")
    assert binding is not None and binding["blocks"][0]["value"] == watermark_payload(carried[0])


def test_a_picture_that_carries_no_mark_id_drawn_for_it_is_refused_with_the_reason(
    signer: Any, context: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    picture, mark_key = fine_noise(), NOISE_KEY
    refused, _ = mark_ids_sorted(picture, mark_key, refused=1 + MARK_ID_DRAWS, carried=0)
    draws = iter(refused[1:])
    monkeypatch.setattr(finalize_module, "mark_id_new", lambda: next(draws))

    with pytest.raises(
        WatermarkError, match=rf"serial {refused[0]}: .*\(nor {MARK_ID_DRAWS} other mark ids drawn for it\)"
    ):
        image_finalize(
            still_variant(256),
            serial=SERIAL,
            mark_id=refused[0],
            image=picture,
            signing=Signing(signer=signer, context=context, watermark=mark_key),
            storage=LocalStorage(tmp_path),
        )
    assert not any(tmp_path.rglob("*.png"))  # nothing stored


def test_a_picture_too_small_for_any_mark_is_refused_at_once_without_drawing_mark_ids(
    signer: Any, context: Any, tmp_path: Path, mark_key: WatermarkKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    def drawn() -> int:
        raise AssertionError("no mark id fits a picture under 256 px: none is drawn")

    monkeypatch.setattr(finalize_module, "mark_id_new", drawn)
    with pytest.raises(WatermarkError, match="200x200") as refused:
        image_finalize(
            still_variant(256),
            serial=SERIAL,
            mark_id=MARK_ID,
            image=product_shot(3).resize((200, 200)),
            signing=Signing(signer=signer, context=context, watermark=mark_key),
            storage=LocalStorage(tmp_path),
        )
    assert not isinstance(refused.value, WatermarkCapacityError) and "other mark ids" not in str(refused.value)


def test_an_ordinary_image_keeps_its_256_px_thumbnail_marked_again(
    signer: Any, context: Any, tmp_path: Path, mark_key: WatermarkKey
) -> None:
    storage = LocalStorage(tmp_path)

    made = image_finalize(
        still_variant(512),
        serial=SERIAL,
        mark_id=MARK_ID,
        image=product_shot(7),
        signing=Signing(signer=signer, context=context, watermark=mark_key),
        storage=storage,
    )

    assert made.generation_record["thumbnail"] == {"width": 256, "height": 256, "watermark": "own"}
    thumb, report = finalised_thumbnail(made, storage, context, mark_key)
    assert report.actions() == ["c2pa.opened", "c2pa.resized", "c2pa.transcoded", "c2pa.watermarked"]
    assert Image.open(io.BytesIO(thumb)).size == (256, 256)


@pytest.mark.parametrize("side", [512, 1024])
def test_the_stored_master_is_the_marked_pixels_signed_trusted_and_each_file_is_stored_under_its_own_hash(
    side: int, signer: Any, context: Any, tmp_path: Path, mark_key: WatermarkKey
) -> None:
    storage = LocalStorage(tmp_path)
    image = product_shot(11).resize((side, side), Image.Resampling.LANCZOS)

    made = image_finalize(
        still_variant(side),
        serial=SERIAL,
        mark_id=MARK_ID,
        image=image,
        signing=Signing(signer=signer, context=context, watermark=mark_key),
        storage=storage,
    )

    master = storage.read(made.file_path)
    assert c2pa_read(master, mime="image/png", context=context).state == "trusted"
    # Encoding and signing change no pixel: the master decodes to exactly the marked image.
    marked = watermark_embed(image, MARK_ID, key=mark_key.secret)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(master)).convert("RGB")), np.asarray(marked))
    # The hashes recorded for the hand-over (taken from the read-back, not hashed again) are the
    # stored files' own.
    thumb = storage.read(made.thumb_path)
    assert made.sha256 == made.manifests[0].sha256 == hashlib.sha256(master).hexdigest()
    assert made.size == len(master)
    assert made.manifests[1].sha256 == hashlib.sha256(thumb).hexdigest()
    assert made.generation_record["thumbnail"] == {"width": 256, "height": 256, "watermark": "own"}


@pytest.fixture(scope="module")
def clip(embedded: tuple[Any, ModelManifest], clip_variant: Variant) -> Clip:
    pipe, manifest = embedded
    (made,) = clips_generate(pipe, manifest, [clip_variant])
    return made


def test_a_clip_becomes_a_signed_watermarked_mp4_master_with_a_signed_thumbnail(
    clip: Clip, clip_variant: Variant, signer: Any, context: Any, tmp_path: Path, mark_key: WatermarkKey
) -> None:
    storage = LocalStorage(tmp_path)
    made = clip_finalize(
        clip_variant,
        serial=SERIAL,
        mark_id=MARK_ID,
        clip=clip,
        signing=Signing(signer=signer, context=context, watermark=mark_key),
        storage=storage,
    )
    key = clip_variant.key
    assert made.mime == "video/mp4"
    assert made.file_path == f"masters/{key[:2]}/{key}.mp4"
    data = storage.read(made.file_path)
    assert data[4:8] == b"ftyp" and made.size == len(data)
    # The generation record says what made the clip, its rate and length included.
    record = made.generation_record
    assert (record["fps"], record["frames"], record["seconds"], record["keyframes"]) == (12, 12, 1.0, 2)
    assert (record["serial"], record["asset_key"], record["seed"]) == (SERIAL, key, 3)
    assert record["thumbnail"] == {"width": 256, "height": 256, "watermark": "own"}

    # Credentials: trusted, created + watermarked, the record inside, a soft binding.
    report = c2pa_read(data, mime="video/mp4", context=context)
    assert report.state == "trusted", report.validation_codes
    assert report.actions()[:2] == ["c2pa.created", "c2pa.watermarked"]
    assert report.assertion("org.greenlight.generation") == record
    assert [m.kind for m in made.manifests] == ["master", "thumbnail"]
    assert made.manifests[0].mime == "video/mp4" and made.manifests[0].label == report.active_label

    # The watermark reads back from the decoded frames (every frame carries it, not just one).
    decoded = mp4_clip(data)
    assert (len(decoded.frames), decoded.fps, decoded.size) == (12, 12, (256, 256))
    assert watermark_read_frames(list(decoded.frames), key=mark_key.secret).serial == MARK_ID
    assert watermark_read(decoded.frames[-1], key=mark_key.secret).serial == MARK_ID

    # The thumbnail: a JPEG of the first marked frame, signed with the MP4 as its parent.
    thumb = storage.read(made.thumb_path)
    thumb_report = c2pa_read(thumb, mime="image/jpeg", context=context)
    assert thumb_report.state == "trusted", thumb_report.validation_codes
    assert "c2pa.transcoded" in thumb_report.actions() and "c2pa.watermarked" in thumb_report.actions()
    parents = [i for i in (thumb_report.manifest or {}).get("ingredients", []) if i.get("relationship") == "parentOf"]
    assert len(parents) == 1 and parents[0]["format"] == "video/mp4"
    assert watermark_read(Image.open(io.BytesIO(thumb)).convert("RGB"), key=mark_key.secret).serial == MARK_ID


def test_the_master_crf_keeps_the_mark_and_unmarked_frames_are_never_claimed(
    clip: Clip, mark_key: WatermarkKey
) -> None:
    marked = [watermark_embed(frame, MARK_ID, key=mark_key.secret) for frame in clip.frames]
    # The first CRF the pipeline tries keeps the mark in the frames `verify` reads...
    encoded = mp4_encode(marked, clip.fps, crf=MASTER_CRFS[0])
    assert watermark_read_frames(mp4_decode(encoded, limit=WATERMARK_FRAMES), key=mark_key.secret).serial == MARK_ID
    assert clip_encode(marked, clip.fps, serial=MARK_ID, mark_key=mark_key) == encoded
    # ...and frames that do not carry the serial are refused rather than signed as watermarked.
    with pytest.raises(WatermarkError, match=f"does not read back serial {MARK_ID}"):
        clip_encode(list(clip.frames), clip.fps, serial=MARK_ID, mark_key=mark_key)
