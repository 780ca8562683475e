"""Each service's migrations have the head that the start-up shortcut reads without Alembic
(gridgate.sql.migrate.head_revision) and that Alembic itself finds."""

from __future__ import annotations

import pytest
from alembic.script import ScriptDirectory

from gridgate.sql.migrate import alembic_config, head_revision


@pytest.mark.parametrize(
    "package", ["gridgate.gateway", "gridgate.notifier", "gridgate.auth.links"]
)
def test_head_read_from_the_files_is_alembics_head(package: str) -> None:
    alembic_head = ScriptDirectory.from_config(alembic_config(package)).get_current_head()
    assert alembic_head is not None
    assert head_revision(package) == alembic_head
