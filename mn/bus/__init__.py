"""The message bus: typed messages over kombu, routed by the hash ring."""

from mn.bus.bus import CloudBus, Request
from mn.bus.errors import BusUnavailableError, CallTimeoutError, NodeUnavailableError, NoServiceError
from mn.bus.message import Event, Message, Reply

__all__ = ["CloudBus", "Request", "Message", "Reply", "Event", "NoServiceError",
           "CallTimeoutError", "NodeUnavailableError", "BusUnavailableError"]
