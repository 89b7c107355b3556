"""Host agents. Installed alone on hosts, so nothing in this package imports the MN (``mn``)."""
