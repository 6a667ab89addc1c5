"""Verify any file: its Content Credentials, its watermark, and the asset they lead to."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from review.errors import VerifyRefusedError
from review.verify import VerifyReport, file_verify, size_check


class Command(BaseCommand):
    help = "Verify a file (PNG, JPEG, WebP, MP4): C2PA state, watermark, asset record and stored manifest."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="the file to verify")
        parser.add_argument("--json", action="store_true", help="print the whole report as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            # Refuse by size before reading the file into memory.
            size_check(path.stat().st_size, filename=path.name)
            report = file_verify(data=path.read_bytes(), filename=path.name)
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}") from error
        except VerifyRefusedError as refused:
            raise CommandError(f"Not verified ({refused.reason}): {refused}") from refused
        if options["json"]:
            self.stdout.write(json.dumps(report.to_dict(), indent=2))
        else:
            self.stdout.write("\n".join(report_lines(report)))


def report_lines(report: VerifyReport) -> list[str]:
    """The report as text: the verdict first, then the evidence."""
    f, c, w = report.file, report.c2pa, report.watermark
    lines = [
        report.verdict,
        f"  file         {f.filename}: {f.format.upper()} {f.width}x{f.height}, {f.size:,} bytes, sha256 {f.sha256}",
        f"  C2PA         {c.state}"
        + (f" ({', '.join(c.codes)})" if c.codes else "")
        + (f": {c.error}" if c.error else ""),
    ]
    if c.label:
        lines += [
            f"               claim generator {c.claim_generator or '-'}; title {c.title or '-'}",
            f"               signed by {c.signer or '-'}; actions {', '.join(c.actions) or '-'}",
            f"               signing certificate {c.signer_serial or '-'}: "
            + (f"this installation's {c.signed_with} key" if c.signed_with else "not one of this installation's keys"),
        ]
    if report.manifest_asset is not None:
        lines.append(f"  manifest of  asset #{report.manifest_asset}, not this file's (the content does not match it)")
    if w.found:
        confidence = f" (confidence {w.confidence:.1f})" if w.confidence is not None else ""
        lines.append(f"  watermark    mark id {w.serial}{confidence}, read with watermark key {w.key_id}")
    if report.content_similarity is not None:
        lines.append(f"  picture      similarity {report.content_similarity:.2f} to the marked asset's master")
    if report.marked_as is not None:
        lines.append(f"  mark of      asset #{report.marked_as}, but this picture is not that asset's")
    else:
        lines.append(f"  watermark    {w.note}")
    a = report.asset
    if a is not None:
        lines += [
            f"  asset        #{a.serial} ({a.state}), found by its {report.matched_by}",
            f"               campaign {a.campaign}; template {a.template} v{a.template_version}",
            f"               model {a.model_name} {a.model_manifest_hash[:12]}; seed {a.seed}",
            f"               prompt {a.prompt!r}",
        ]
        lines += [
            f"  decision     {d.decision} by {d.reviewer} at {d.at:%Y-%m-%d %H:%M} UTC"
            + (f" ({d.reason})" if d.reason else "")
            for d in a.decisions
        ]
        lines += [
            f"  published    {p.rendition} {p.path} by {p.published_by} at {p.at:%Y-%m-%d %H:%M} UTC"
            + (" (revoked)" if p.revoked_at else "")
            for p in a.publications
        ]
    s = report.stored_manifest
    if s is not None:
        lines.append(
            f"  stored       {s.kind} manifest {s.label} (by {s.matched_by}), signed {s.created_at:%Y-%m-%d %H:%M} UTC"
        )
    lines += [f"  note         {note}" for note in report.notes]
    return lines
