"""Shared fixtures: a development signing chain with its signer and reader context, settings
pointing at temporary folders, and a local S3-compatible endpoint."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Prefect's local mode keeps a database under PREFECT_HOME: never the developer's own.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="greenlight-prefect-"))
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# The live server answers each request in a new thread: keep no connection open after it.
os.environ.setdefault("GREENLIGHT_DB_CONN_MAX_AGE", "0")

import pytest

from infra.dev_certs import dev_chain_create
from provenance.credentials import reader_context
from provenance.keys import SigningFiles, signer_create
from provenance.watermark_keys import WatermarkKey, WatermarkKeyFiles, watermark_key_create, watermark_keys_load
from tests.fixture_types import SettingsWrapper


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list[Any]) -> None:
    """Each pytest-xdist worker process gets folders of its own.

    The suite runs on one worker per core (``--numprocesses logical`` in pyproject.toml): much of
    it waits on servers, browsers and subprocesses, so two workers on two cores take about two
    thirds of the time of one. Each worker has its own test database (pytest-django adds
    ``_gw0``, ``_gw1``...), but the files a test stores under the var folder (masters are named
    by their asset's key, the same in both workers for the same campaign, and swept when no asset
    references them) and Prefect's local database under ``PREFECT_HOME`` (which the settings
    default to a folder of it) would be shared: each worker takes a subfolder of each named after
    it (``gw0``...), set in its environment before it starts (Django's settings read it before
    any conftest is loaded)."""
    import execnet
    from django.conf import settings

    bases = {"GREENLIGHT_VAR_DIR": Path(settings.VAR_DIR), "PREFECT_HOME": Path(os.environ["PREFECT_HOME"])}
    for index, spec in enumerate(specs):
        env = []
        for name, base in bases.items():
            folder = (base / spec.id).resolve()
            folder.mkdir(parents=True, exist_ok=True)  # Prefect's local server does not make its home
            env.append(f"env:{name}={folder}")
        specs[index] = execnet.XSpec("//".join([str(spec), *env]))
        specs[index].id = spec.id  # the worker's name (gw0, gw1...), already given


@pytest.fixture(scope="session")
def signing_files(tmp_path_factory: pytest.TempPathFactory) -> SigningFiles:
    """A development certificate chain (root -> intermediate -> signer) made once per session."""
    return dev_chain_create(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def signer(signing_files: SigningFiles) -> Iterator[Any]:
    """One signer (the development chain's, Ed25519) for the whole session, closed at the end."""
    with signer_create(signing_files) as created:
        yield created


@pytest.fixture(scope="session")
def context(signing_files: SigningFiles) -> Iterator[Any]:
    """A c2pa Context trusting the dev root, for Builders and Readers alike."""
    with reader_context(signing_files) as created:
        yield created


@pytest.fixture(scope="session")
def watermark_keys(tmp_path_factory: pytest.TempPathFactory) -> WatermarkKeyFiles:
    """A folder holding one secret watermark key (made as `signing_keys_create` makes it), once per session."""
    directory = tmp_path_factory.mktemp("watermark-keys")
    watermark_key_create(directory)
    return WatermarkKeyFiles(directory=directory)


@pytest.fixture(scope="session")
def mark_key(watermark_keys: WatermarkKeyFiles) -> WatermarkKey:
    """The session's current watermark key: what the pipeline marks with under `greenlight_settings`."""
    return watermark_keys_load(watermark_keys).current


@pytest.fixture
def greenlight_settings(
    settings: SettingsWrapper, tmp_path: Path, signing_files: SigningFiles, watermark_keys: WatermarkKeyFiles
) -> SettingsWrapper:
    """Storage, publish target, signing files and watermark keys in temporary folders for one test."""
    settings.GREENLIGHT_STORAGE_ROOT = tmp_path / "storage"
    settings.GREENLIGHT_PUBLISH_ROOT = tmp_path / "published"
    settings.GREENLIGHT_SIGNING_CHAIN = signing_files.chain
    settings.GREENLIGHT_SIGNING_KEY = signing_files.key
    settings.GREENLIGHT_TRUST_ANCHORS = signing_files.trust_anchors
    settings.GREENLIGHT_WATERMARK_KEYS_DIR = watermark_keys.directory
    return settings


@pytest.fixture
def library_dir(tmp_path: Path, settings: SettingsWrapper) -> Iterator[Path]:
    """A writable copy of the shipped prompt library, used as GREENLIGHT_LIBRARY_DIR."""
    import shutil

    target = tmp_path / "library"
    shutil.copytree(Path(settings.BASE_DIR) / "prompt_library" / "library", target)
    settings.GREENLIGHT_LIBRARY_DIR = target
    yield target


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible endpoint (moto's server mode) for the object-storage publish target:
    real HTTP and the real S3 protocol through s3fs, nothing leaves the machine."""
    import socket

    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> dict[str, object]:
    """A new, empty bucket on the local endpoint; returns the s3fs options that reach it."""
    import uuid

    import s3fs

    options: dict[str, object] = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    fs = s3fs.S3FileSystem(**options)
    name = f"published-{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    return {"bucket": name, "options": options, "fs": fs}


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for a module's tests: the models are tiny and the CPU may be shared
    (two threads on a busy 2-core machine cost far more than they give)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
