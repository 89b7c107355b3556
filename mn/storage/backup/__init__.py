"""Backup storage: where images live (ZStack's ``storage.backup`` service).

* :mod:`~mn.storage.backup.messages`: the APIs (simulator creation,
  attach/detach to zones, state, update, delete, reconnect, capacity);
* :mod:`~mn.storage.backup.inventory`: BackupStorageInventory;
* :mod:`~mn.storage.backup.service`: :class:`BackupStorageService`;
* :mod:`~mn.storage.backup.capacity`: reserve and release capacity, find
  candidates (what image code calls, inside its own transaction).
"""
