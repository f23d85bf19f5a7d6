"""LibreLane (``librelane``), the continuation of OpenLane 2.

Same command line and configuration rules as :mod:`portal.flows.openlane2` (LibreLane keeps
``--manual-pdk``, ``--pdk-root``, ``--pdk``, ``--scl``, ``--run-tag``, ``--overwrite``,
``--design-dir`` and the ``<design dir>/runs/<tag>`` layout); only the executable and the image
differ. LibreLane also fixed the ``expr::`` minus bug, which the checker knows.
"""

from __future__ import annotations

from portal.flows.openlane2 import OpenLane2


class LibreLane(OpenLane2):
    """LibreLane: the ``librelane`` command."""

    name = "librelane"
    title = "LibreLane"
    image_setting = "LIBRELANE_IMAGE"
    executable = "librelane"
    executable_setting = "LIBRELANE_EXECUTABLE"
