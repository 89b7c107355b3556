"""Tags: system tags (patterned, validated, read by code) and user tags (free labels).

* :mod:`mn.tags.pattern`: :class:`PatternedSystemTag` and :class:`SystemTag`,
  declared by services as module-level constants;
* :mod:`mn.tags.validators`: stock token validators;
* :mod:`mn.tags.manager`: :class:`TagManager`, the node's ``node.tags``;
* :mod:`mn.tags.store`: the same operations inside a caller's transaction;
* :mod:`mn.tags.query`: ``__systemTag__`` / ``__userTag__`` query conditions.

Tables: ``SystemTagVO`` and ``UserTagVO`` (``mn.db.models.tag``).
"""

from mn.tags.manager import TagManager
from mn.tags.pattern import PatternedSystemTag, SystemTag
from mn.tags.query import TAG_FIELDS, TAG_OPERATORS, tag_condition, tag_kind_of_field
from mn.tags.registry import SystemTagRegistry

__all__ = [
    "TAG_FIELDS",
    "TAG_OPERATORS",
    "PatternedSystemTag",
    "SystemTag",
    "SystemTagRegistry",
    "TagManager",
    "tag_condition",
    "tag_kind_of_field",
]
