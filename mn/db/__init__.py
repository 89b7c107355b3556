"""Database layer: engine and sessions, models, schema migrations."""

from mn.db.engine import Database, ensure_database_exists
from mn.db.migrate import current_revision, upgrade
from mn.db.models import Base, ResourceMixin

__all__ = [
    "Base",
    "Database",
    "ResourceMixin",
    "current_revision",
    "ensure_database_exists",
    "upgrade",
]
