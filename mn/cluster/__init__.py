"""Clusters: hosts of one hypervisor type in one zone (ZStack's cluster service).

* :mod:`mn.cluster.messages`: the cluster APIs, their events, and the
  message a zone uses to change its clusters' state;
* :mod:`mn.cluster.inventory`: :class:`ClusterInventory`;
* :mod:`mn.cluster.service`: :class:`ClusterService`, the ``cluster`` service;
* :mod:`mn.cluster.extensions`: hooks other services add to cluster state changes;
* :mod:`mn.cluster.zone_extension`: clusters follow their zone's state.

Table: ``ClusterVO`` (``mn.db.models.cluster``).
"""
