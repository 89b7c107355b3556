"""Storage: where volumes live (primary storage) and where images live (backup storage).

* :mod:`mn.storage.primary`: the ``storage.primary`` service (simulator and
  LocalStorage types), attachment to clusters, capacity reservation
  (:mod:`mn.storage.primary.capacity`) and LocalStorage's per-host
  accounting (:mod:`mn.storage.primary.local`);
* :mod:`mn.storage.backup`: the ``storage.backup`` service (simulator type),
  attachment to zones and capacity (:mod:`mn.storage.backup.capacity`);
* :mod:`mn.storage.state`: their Enabled/Disabled(/Maintenance) state machines.

Tables: ``mn.db.models.storage``.
"""
