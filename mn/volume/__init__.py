"""Volumes (ZStack's volume service): data volumes and their primary storage.

* :mod:`mn.volume.messages`: the data volume APIs;
* :mod:`mn.volume.inventory`: :class:`VolumeInventory`;
* :mod:`mn.volume.service`: :class:`VolumeService`, the ``volume`` service;
* :mod:`mn.volume.placement`: volumes on primary storage, capacity included;
* :mod:`mn.volume.cascade`: volumes when their primary storage is deleted.

Root volumes are made and expunged with their VM (:mod:`mn.vm`).
Table: ``VolumeVO`` (``mn.db.models.volume``).
"""
