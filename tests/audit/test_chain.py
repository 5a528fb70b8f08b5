"""The hash chain catches edits, deletes and reorders made directly in SQL; on PostgreSQL the
table refuses them in the first place."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from server.audit.models import AuditEvent
from server.audit.services import audit_record, audit_verify

TABLE = AuditEvent._meta.db_table


@pytest.fixture
def events(db):
    for n in range(5):
        audit_record(
            actor=f"user{n}",
            action="test.event",
            target=f"folder:{n}",
            outcome="success",
            source_address="127.0.0.1",
            details={"n": n},
        )


def raw(sql, params=()):
    """Tamper as an attacker with database access would; on PostgreSQL first switch off the
    append-only triggers (inside the test's transaction, so it is undone afterwards)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {TABLE} ENABLE TRIGGER USER")


def verify_command():
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    return out.getvalue()


def test_intact_log_verifies(events):
    assert audit_verify() == (5, None)
    assert "intact: 5 event(s)" in verify_command()
    first = AuditEvent.objects.get(seq=1)
    assert first.prev_hash == "0" * 64
    assert AuditEvent.objects.get(seq=2).prev_hash == first.hash


def test_edited_row_is_named(events):
    raw(f"UPDATE {TABLE} SET actor = 'someone else' WHERE seq = 3")
    checked, problem = audit_verify()
    assert (checked, problem.seq) == (2, 3)
    assert "changed" in problem.reason
    with pytest.raises(CommandError, match="event #3"):
        verify_command()


def test_edited_details_are_caught(events):
    raw(f"UPDATE {TABLE} SET details = %s WHERE seq = 4", ['{"n": 40}'])
    assert audit_verify()[1].seq == 4


def test_deleted_row_is_named(events):
    raw(f"DELETE FROM {TABLE} WHERE seq = 2")
    checked, problem = audit_verify()
    assert problem.seq == 2 and "missing" in problem.reason


def test_deleted_last_row_then_forged_append_is_caught(events):
    raw(f"DELETE FROM {TABLE} WHERE seq = 5")
    assert audit_verify() == (4, None)  # a truncated tail alone is what checkpoints are for
    raw(f"UPDATE {TABLE} SET prev_hash = %s WHERE seq = 4", ["f" * 64])
    assert audit_verify()[1].seq == 4


def test_reordered_rows_are_caught(events):
    raw(f"UPDATE {TABLE} SET seq = -2 WHERE seq = 2")
    raw(f"UPDATE {TABLE} SET seq = 2 WHERE seq = 3")
    raw(f"UPDATE {TABLE} SET seq = 3 WHERE seq = -2")
    problem = audit_verify()[1]
    assert problem.seq == 2 and "link" in problem.reason


def test_export_is_json_lines_oldest_first(events):
    import json

    out = io.StringIO()
    call_command("audit", "export", stdout=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert lines[0]["target"] == "folder:0" and lines[0]["hash"]


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {TABLE} SET actor = 'x'",
        f"DELETE FROM {TABLE}",
        f"TRUNCATE {TABLE}",
    ],
)
def test_postgres_refuses_rewrites(events, statement):
    from tests.conftest import require

    require(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL)")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert audit_verify() == (5, None)
    audit_record(actor="x", action="test.after", outcome="success")  # appending still works
    assert audit_verify() == (6, None)
