"""Zones: the data centers everything physical belongs to (ZStack's zone service).

* :mod:`mn.zone.messages`: the zone APIs and their events;
* :mod:`mn.zone.inventory`: :class:`ZoneInventory`;
* :mod:`mn.zone.service`: :class:`ZoneService`, the ``zone`` service;
* :mod:`mn.zone.extensions`: hooks other services add to zone state changes;
* :mod:`mn.zone.state`: the Enabled/Disabled state machine;
* :mod:`mn.zone.cascade`: :class:`TableCascade`, zones (and clusters) in cascades.

Table: ``ZoneVO`` (``mn.db.models.zone``).
"""
