"""The source images (product photos, masks) that assets were drawn from, shown on the asset page."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import Http404, HttpRequest, HttpResponseBase
from django.views.decorators.http import require_GET

from prompt_library.errors import SourceImageError
from prompt_library.sources import source_image_get
from provenance.config import provenance_config_from_settings
from provenance.storage import LocalStorage
from review.files import file_response


@permission_required("review.view_asset", raise_exception=True)
@require_GET
def source_image_file(request: HttpRequest, sha256: str) -> HttpResponseBase:
    """A stored source image by its sha256 (an unknown or malformed one answers 404)."""
    try:
        source = source_image_get(sha256=sha256)
    except SourceImageError as exc:
        raise Http404(str(exc)) from exc
    storage = LocalStorage(provenance_config_from_settings().storage_root)
    try:
        response = file_response(request, storage.path(source.file_path), content_type=source.mime)
    except OSError as exc:
        raise Http404(f"source image {sha256[:12]} is missing from storage") from exc
    response["Cache-Control"] = "private, max-age=86400, immutable"  # named by its content
    return response
