"""Images: templates of root and data volumes, and ISOs, kept on backup storage
(ZStack's image service).

* :mod:`mn.image.constants`: ZStack's image statuses, states, media types,
  platforms, formats and architectures;
* :mod:`mn.image.config`: the ``image`` global configuration (deletion policy,
  expunge timing, local path filters);
* :mod:`mn.image.url`: which URLs an image may be added from;
* :mod:`mn.image.download`: the simulated download (sizes read from the URL);
* :mod:`mn.image.spec`: ZStack's defaults and checks applied to an AddImage;
* :mod:`mn.image.backup`: copies on backup storage and their capacity,
  :func:`~mn.image.backup.image_backup_storages` for the VM service;
* :mod:`mn.image.lifecycle`: adding, deleting (by policy), recovering,
  expunging and removing images, inside the caller's transaction;
* :mod:`mn.image.messages`, :mod:`mn.image.inventory`: the APIs and inventories;
* :mod:`mn.image.service`: :class:`~mn.image.service.ImageService`, the ``image`` service;
* :mod:`mn.image.cascade`: images in backup storage deletions;
* :mod:`mn.image.expunger`: expunges images deleted with the Delay policy.

Tables: ``ImageVO`` and ``ImageBackupStorageRefVO`` (``mn.db.models.image``).
"""
