"""The flows the portal knows, by name."""

from __future__ import annotations

from portal.flows.base import Flow, FlowError
from portal.flows.librelane import LibreLane
from portal.flows.openlane1 import OpenLane1
from portal.flows.openlane2 import OpenLane2

FLOW_CLASSES: dict[str, type[Flow]] = {
    OpenLane1.name: OpenLane1,
    OpenLane2.name: OpenLane2,
    LibreLane.name: LibreLane,
}
DEFAULT_FLOW = OpenLane1.name


class UnknownFlow(FlowError):
    """No flow has this name."""


def flow_names() -> list[str]:
    """``["openlane1", "openlane2", "librelane"]``."""
    return list(FLOW_CLASSES)


def get_flow(name: str | None = None) -> Flow:
    """A flow adapter by name (``None`` = :data:`DEFAULT_FLOW`)."""
    key = name or DEFAULT_FLOW
    try:
        return FLOW_CLASSES[key]()
    except KeyError:
        raise UnknownFlow(f"unknown flow {key!r} (known: {', '.join(FLOW_CLASSES)})") from None
