"""The database itself refuses UPDATE and DELETE on briefs: a brief is kept as submitted."""

from __future__ import annotations

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

POSTGRES_UP = """
CREATE FUNCTION requests_brief_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'requests_brief is immutable: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER requests_brief_immutable
    BEFORE UPDATE OR DELETE ON requests_brief
    FOR EACH ROW EXECUTE FUNCTION requests_brief_immutable();
"""
POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS requests_brief_immutable ON requests_brief;
DROP FUNCTION IF EXISTS requests_brief_immutable();
"""
SQLITE_UP = [
    f"""CREATE TRIGGER requests_brief_no_{op.lower()} BEFORE {op} ON requests_brief
    BEGIN SELECT RAISE(ABORT, 'requests_brief is immutable: {op} refused'); END;"""
    for op in ("UPDATE", "DELETE")
]
SQLITE_DOWN = [f"DROP TRIGGER IF EXISTS requests_brief_no_{op};" for op in ("update", "delete")]


def _run(schema_editor: BaseDatabaseSchemaEditor, postgres: str, sqlite: list[str]) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(postgres, params=None)
    elif vendor == "sqlite":
        for statement in sqlite:
            schema_editor.execute(statement, params=None)
    else:
        raise RuntimeError(f"no immutable-brief trigger for the {vendor} database")


def forwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run(schema_editor, POSTGRES_UP, SQLITE_UP)


def backwards(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _run(schema_editor, POSTGRES_DOWN, SQLITE_DOWN)


class Migration(migrations.Migration):
    dependencies = [("requests", "0001_briefs_notifications")]
    operations = [migrations.RunPython(forwards, backwards)]
