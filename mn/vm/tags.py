"""The system tags of VMs (ZStack's VmSystemTags this service reads)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from mn.tags import PatternedSystemTag
from mn.tags import validators as token
from mn.tags.store import tags_of_pattern

VM_RESOURCE_TYPE = "VmInstanceVO"

#: The guest's hostname (APISetVmHostname; DHCP hands it out).
HOSTNAME = PatternedSystemTag("hostname::{hostname}", VM_RESOURCE_TYPE,
                              validators={"hostname": token.hostname},
                              description="the hostname of the VM's guest")

#: A fixed address for the VM's nic on an L3 network, used when the nic is made.
STATIC_IP = PatternedSystemTag("staticIp::{l3NetworkUuid}::{staticIp}", VM_RESOURCE_TYPE, multi=True,
                               validators={"l3NetworkUuid": token.uuid, "staticIp": token.ipv4},
                               description="the address of the VM's nic on an L3 network")

PATTERNS = (HOSTNAME, STATIC_IP)


def hostname_of(session: Session, vm_uuid: str) -> str | None:
    tags = tags_of_pattern(session, HOSTNAME, vm_uuid)
    return HOSTNAME.tokens(tags[0].tag)["hostname"] if tags else None


def static_ips_of(system_tags: list[str] | None) -> dict[str, str]:
    """L3 network uuid -> requested address, from a create request's system tags."""
    return {t["l3NetworkUuid"]: t["staticIp"]
            for t in (STATIC_IP.tokens(tag) for tag in system_tags or () if STATIC_IP.matches(tag))}


def static_ips_in_session(session: Session, vm_uuid: str) -> dict[str, str]:
    """L3 network uuid -> address, from the VM's staticIp tags."""
    return static_ips_of([vo.tag for vo in tags_of_pattern(session, STATIC_IP, vm_uuid)])
