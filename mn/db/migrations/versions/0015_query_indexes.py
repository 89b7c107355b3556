"""Indexes for VM queries at scale (issue 8: 100,000 VMs).

* ``VmInstanceVO(hostUuid, state, createDate DESC)`` replaces the index on
  ``hostUuid`` alone (it still serves the foreign key and ``hostUuid = ?``):
  "the VMs of a host in a state" is counted from the index alone, and its
  newest first page is read in index order, with no sort. MariaDB could only
  intersect the two single-column indexes (reading every Running VM's entry).
* ``VmInstanceVO(createDate DESC)``: the newest VMs first (the usual listing)
  is read in index order; the primary key after it in the index is the
  query's tie-breaker (``createDate DESC, uuid``), so no sort is left.
* ``VmNicVO(l3NetworkUuid, vmInstanceUuid)`` replaces the index on
  ``l3NetworkUuid`` alone: ``vmNics.l3Network...`` conditions find their VMs
  from the index alone, without reading each nic row.

Created before the indexes they replace are dropped: MariaDB wants an index
on a foreign key's column at all times.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_VmInstanceVO_hostUuid_state_createDate", "VmInstanceVO",
                    ["hostUuid", "state", sa.column("createDate").desc()])
    op.drop_index("ix_VmInstanceVO_hostUuid", table_name="VmInstanceVO")
    op.create_index("ix_VmInstanceVO_createDate", "VmInstanceVO", [sa.column("createDate").desc()])
    op.create_index("ix_VmNicVO_l3NetworkUuid_vmInstanceUuid", "VmNicVO",
                    ["l3NetworkUuid", "vmInstanceUuid"])
    op.drop_index("ix_VmNicVO_l3NetworkUuid", table_name="VmNicVO")


def downgrade() -> None:
    op.create_index("ix_VmNicVO_l3NetworkUuid", "VmNicVO", ["l3NetworkUuid"])
    op.drop_index("ix_VmNicVO_l3NetworkUuid_vmInstanceUuid", table_name="VmNicVO")
    op.drop_index("ix_VmInstanceVO_createDate", table_name="VmInstanceVO")
    op.create_index("ix_VmInstanceVO_hostUuid", "VmInstanceVO", ["hostUuid"])
    op.drop_index("ix_VmInstanceVO_hostUuid_state_createDate", table_name="VmInstanceVO")
