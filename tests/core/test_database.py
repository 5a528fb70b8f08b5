import os

import pytest
from django.db import connection

from tests.conftest import require


@pytest.mark.postgres
def test_suite_runs_on_postgresql_when_configured(db):
    """CI sets DATABASE_URL to PostgreSQL; this proves the suite really ran there."""
    require(os.environ.get("DATABASE_URL", "").startswith("postgres"), "PostgreSQL (DATABASE_URL)")
    assert connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        cursor.execute("select version()")
        assert "PostgreSQL" in cursor.fetchone()[0]
