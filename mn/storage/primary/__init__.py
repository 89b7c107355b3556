"""Primary storage: where volumes live (ZStack's ``storage.primary`` service).

* :mod:`~mn.storage.primary.messages`: the APIs (simulator and LocalStorage
  creation, attach/detach to clusters, state, update, delete, reconnect,
  capacity queries);
* :mod:`~mn.storage.primary.inventory`: PrimaryStorageInventory and the
  inventories of its refs;
* :mod:`~mn.storage.primary.service`: :class:`PrimaryStorageService`;
* :mod:`~mn.storage.primary.capacity`: reserve and release capacity, find
  candidates (what VM and volume code calls, inside its own transaction);
* :mod:`~mn.storage.primary.local`: LocalStorage's share of each host
  (and :mod:`~mn.storage.primary.host_extension`, which gives hosts added
  to a cluster their shares);
* :mod:`~mn.storage.primary.cascade`: primary storage and host shares in
  cascade deletions;
* :mod:`~mn.storage.primary.extensions`: hooks around state changes.
"""
