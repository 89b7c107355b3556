"""The ZStack-compatible management node (MN).

One MN is one OS process: it hosts every service, the bus consumers, the
membership heartbeat and the HTTP server. See ``mn/README.md`` for the
concurrency model every module follows.
"""

__version__ = "0.1.0"
