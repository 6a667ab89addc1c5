"""Errors of the prompt library.

PromptLibraryError                 anything wrong with templates, versions or campaigns
├── LibraryFileError               a library file is malformed (names the file and the field)
│   └── UnknownVariableError       a template uses a variable it does not declare
├── VariablesError                 variable values that do not fit a template version
├── VersionChangedError            a published template version's file was edited in place
├── TemplateVersionNotFoundError   a campaign names a template version that does not exist
├── CampaignNotFoundError          no campaign of that name has been loaded
├── CampaignExistsError            a new campaign's name is taken
└── SourceImageError               a source image (photo or mask) that cannot be used
"""

from __future__ import annotations

from pathlib import Path


class PromptLibraryError(Exception):
    """Base of every prompt-library error."""


class LibraryFileError(PromptLibraryError):
    """A template or campaign file is malformed."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class UnknownVariableError(LibraryFileError):
    """A template's prompt uses a variable that it does not declare."""

    def __init__(self, path: Path | str, template: str, unknown: list[str], declared: list[str]) -> None:
        self.template = template
        self.unknown = unknown
        self.declared = declared
        super().__init__(
            path,
            f"template '{template}' uses unknown variable(s) {', '.join(repr(u) for u in unknown)} "
            f"(declared: {', '.join(declared) or 'none'})",
        )


class VariablesError(PromptLibraryError, ValueError):
    """Variable values that do not fit a template version: missing or unknown names, or a value
    that is empty or too long (`bad` names it)."""

    def __init__(
        self, template: str, number: int, declared: list[str], given: list[str], *, bad: tuple[str, str] | None = None
    ) -> None:
        self.template = template
        self.number = number
        self.declared = declared
        self.given = given
        self.bad = bad
        if bad is not None:
            name, value = bad
            problem = f"variable '{name}' needs 1 to 200 characters of text (given: {value[:60]!r})"
        else:
            problem = f"needs variables {', '.join(declared) or 'none'} (given: {', '.join(given) or 'none'})"
        super().__init__(f"template '{template}' v{number} {problem}")


class VersionChangedError(PromptLibraryError):
    """A published version is immutable: its file no longer matches what was loaded."""

    def __init__(self, path: Path | str, template: str, number: int) -> None:
        self.path = Path(path)
        self.template = template
        self.number = number
        super().__init__(
            f"{path}: template '{template}' v{number} was changed after it was loaded; "
            "published versions are immutable, add a new version file instead"
        )


class TemplateVersionNotFoundError(PromptLibraryError):
    """A campaign refers to a template version that does not exist."""

    def __init__(self, path: Path | str | None, template: str, number: int, known: list[int]) -> None:
        self.path = Path(path) if path else None
        self.template = template
        self.number = number
        self.known = known
        where = f"{path}: " if path else ""
        have = ", ".join(f"v{n}" for n in known) if known else "no versions"
        super().__init__(f"{where}template '{template}' v{number} does not exist (known: {have})")


class CampaignNotFoundError(PromptLibraryError):
    """No campaign of that name has been loaded."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"campaign '{name}' does not exist (loaded: {', '.join(known) or 'none'}; "
            "run `manage.py library_load` after adding its file)"
        )


class SourceImageError(PromptLibraryError, ValueError):
    """A source image (a product photo or a mask) that cannot be used: names the field and value."""

    def __init__(self, field: str, value: object, problem: str) -> None:
        self.field = field
        self.value = value
        self.problem = problem
        super().__init__(f"{field} = {str(value)[:80]!r}: {problem}")


class CampaignExistsError(PromptLibraryError):
    """A new campaign (made through the API) whose name another campaign has."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"campaign '{name}' already exists: choose another name")
