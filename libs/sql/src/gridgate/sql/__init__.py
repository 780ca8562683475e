"""SQL plumbing shared by the services that keep state in SQL (the gateway, the notifier).

Each service keeps its own tables, migrations and stores; only the engine set-up and the way
schemas are upgraded are common.
"""

from gridgate.sql.dialects import conflict_insert
from gridgate.sql.engine import SqlTimeouts, create_engine
from gridgate.sql.migrate import upgrade_schema

__all__ = ["SqlTimeouts", "conflict_insert", "create_engine", "upgrade_schema"]
