"""Instance and disk offerings: the sizes VMs and data volumes are made in
(ZStack's configuration service).

* :mod:`mn.offering.constants`: offering types and the allocator strategies
  an offering may name;
* :mod:`mn.offering.messages`, :mod:`mn.offering.inventory`: the APIs and inventories;
* :mod:`mn.offering.service`: :class:`~mn.offering.service.OfferingService`,
  the ``configuration`` service.

Tables: ``InstanceOfferingVO`` and ``DiskOfferingVO`` (``mn.db.models.offering``).
"""
