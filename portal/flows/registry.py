"""The flows the portal knows, by name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from portal.flows.base import Flow
from portal.flows.librelane import LibreLane, describe_steps
from portal.flows.openlane1 import OpenLane1
from portal.flows.openlane2 import OpenLane2
from portal.flows.types import FlowError

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


def site_notes(settings: Mapping[str, object]) -> dict[str, str]:
    """Flow title -> what it does on this site, for each flow cut to fewer steps than its own
    (``{"LibreLane": "stops after synthesis on this cluster, ..."}``); a bad steps setting is
    left to the submit check, which names it."""
    notes = {}
    for cls in FLOW_CLASSES.values():
        flow = cls()
        try:
            text = describe_steps(flow.site_steps(settings))
        except FlowError:
            continue
        if text:
            notes[flow.title] = text
    return notes


def standin_name(settings: Mapping[str, object]) -> str | None:
    """The file name of the stand-in flow (a test double) when one replaces the real flows.

    Any ``FLOW_EXECUTABLE_OVERRIDE`` counts: only tests and the demo set it.
    """
    override = settings.get("FLOW_EXECUTABLE_OVERRIDE")
    return str(override).rstrip("/").rsplit("/", 1)[-1] if override else None


def run_note(flow: Flow, settings: Mapping[str, object], steps: Sequence[str] | None) -> str | None:
    """What a submission's tasks run, when it is less than the real, whole flow: the stand-in
    test double, or the flow cut to this site's ``steps`` (:func:`describe_steps`)."""
    standin = standin_name(settings)
    if standin:
        return f"the stand-in flow {standin} (a test double, not {flow.title}) ran"
    note = describe_steps(steps)
    return f"{flow.title} {note}" if note else None
