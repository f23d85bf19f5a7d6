"""OpenLane 1, OpenLane 2 and LibreLane without Flask or a database: the Flow adapters, design
configs (JSON, YAML, Tcl), manifests and report parsers into design features."""
