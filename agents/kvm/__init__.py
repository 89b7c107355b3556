"""zstack-kvmagent: the KVM host agent (see README.md and PROTOCOL.md here)."""
