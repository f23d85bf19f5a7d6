"""What every flow adapter provides, and the data it works on.

A *flow* (OpenLane 1, OpenLane 2, LibreLane) is described by a :class:`Flow` subclass. For one
submission the portal:

1. finds the design's configuration in the checked-out repository (:meth:`Flow.find_design`,
   which honours an ``openlane-portal.yaml`` manifest, see :mod:`portal.flows.manifest`);
2. renders one configuration per sweep point (:meth:`Flow.task_config_text`); staging packs
   them into one file per run (:mod:`portal.submit.taskconfigs`) and each array task writes its own
   into ``tasks/<i>/`` when it starts (the same as :meth:`Flow.write_task_config` does here);
3. renders the command each array task runs (:meth:`Flow.task_words` =
   :meth:`Flow.container_words` + :meth:`Flow.command_words`), made of literals and
   :class:`~portal.shell.ShellVar` references to variables the sbatch script defines
   (``RUN_DIR``, ``DESIGN_DIR``, ``TASK_ID``, ``TASK_DIR``, ``TASK_TAG``);
4. after the task, reads its reports from :meth:`Flow.run_dir_for_task`.

Nothing here imports Flask.
"""

from __future__ import annotations

import os
import re
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from shutil import which
from typing import Any, ClassVar, Literal

from portal.flows.designconfig import read_design_config
from portal.flows.manifest import load_repo_manifest
from portal.flows.types import (
    DEFAULT_PDK,
    DEFAULT_PDK_ROOT,
    DEFAULT_SCL,
    PARAM_NAME_RE,
    DesignConfig,
    DesignNotFound,
    FlowError,
    InvalidParameter,
    ParamValue,
    UnsupportedConfig,
)
from portal.shell import ShellVar, Word

FlowName = Literal["openlane1", "openlane2", "librelane"]
Runtime = Literal["apptainer", "singularity", "native"]
RUNTIMES: tuple[str, ...] = ("apptainer", "singularity", "native")

_CONFIG_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def task_tag(index: int) -> str:
    """The run tag of array task ``index`` (``task-0003``); the sbatch script uses the same."""
    if index < 0:
        raise ValueError("task index must be >= 0")
    return f"task-{index:04d}"


def setting(settings: Mapping[str, object], key: str, default: Any = None) -> Any:
    """``settings[key]``, or ``default`` when missing, None or an empty string."""
    value = settings.get(key)
    return default if value is None or value == "" else value


def check_param_name(name: object) -> str:
    """Return ``name`` if it is a valid OpenLane variable name, else raise InvalidParameter."""
    if not isinstance(name, str) or not PARAM_NAME_RE.match(name):
        raise InvalidParameter(f"invalid parameter name {name!r} (expected e.g. CLOCK_PERIOD)")
    return name


def check_param_value(name: str, value: object) -> ParamValue:
    """Accept JSON-representable scalars (or flat lists of them); reject anything else."""
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        if isinstance(value, str) and "\x00" in value:
            raise InvalidParameter(f"{name}: NUL characters are not allowed")
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise InvalidParameter(f"{name}: {value!r} is not a finite number")
        return value
    if isinstance(value, list | tuple):
        return [check_param_value(name, item) for item in value]  # type: ignore[misc]
    raise InvalidParameter(f"{name}: unsupported value type {type(value).__name__}")


def check_params(params: Mapping[str, object]) -> dict[str, ParamValue]:
    """Validate a sweep point's parameters (names and values); keeps the given order."""
    out: dict[str, ParamValue] = {}
    for name, value in params.items():
        out[check_param_name(name)] = check_param_value(name, value)
    for name, value in out.items():
        if isinstance(value, list) and any(isinstance(v, list) for v in value):
            raise InvalidParameter(f"{name}: nested lists are not supported")
    return out


def check_config_file_name(name: str) -> str:
    """A per-task config file name must be a plain file name (no directories, no options)."""
    if not _CONFIG_FILE_NAME_RE.match(name):
        raise InvalidParameter(f"invalid task config file name {name!r}")
    return name


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (no partial files)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def link_design(design_dir: Path, task_dir: Path, link: str) -> Path:
    """Create ``task_dir/<link>`` as a relative symlink to the design folder."""
    task_dir.mkdir(parents=True, exist_ok=True)
    path = task_dir / link
    target = os.path.relpath(os.path.abspath(design_dir), os.path.abspath(task_dir))
    if path.is_symlink():
        if os.readlink(path) == target:
            return path
        path.unlink()
    elif path.exists():
        raise UnsupportedConfig(f"{path} exists and is not the portal's design link")
    os.symlink(target, path, target_is_directory=True)
    return path


def require_usable(design: DesignConfig, title: str, kinds: tuple[str, ...]) -> None:
    """Raise UnsupportedConfig unless ``design`` can be turned into task configs."""
    if design.kind not in kinds:
        raise UnsupportedConfig(f"{title} cannot run a {design.kind} design config")
    if design.errors:
        line, message = design.errors[0]
        where = f"line {line}: " if line else ""
        raise UnsupportedConfig(f"{design.path.name}: {where}{message}")
    if design.kind != "tcl" and design.document is None:
        raise UnsupportedConfig(f"{design.path.name} could not be read")


class Flow(ABC):
    """One OpenLane-like flow: where its config lives, how a task runs it, where it reports.

    Subclasses set the class attributes and implement :meth:`task_config_text`,
    :meth:`command_words`, :meth:`task_config_name` and :meth:`metrics_path`.
    """

    #: "openlane1" | "openlane2" | "librelane"
    name: ClassVar[str]
    #: human-readable name for the UI
    title: ClassVar[str]
    #: the settings key naming this flow's container image
    image_setting: ClassVar[str]
    #: the flow's own executable inside the image
    executable: ClassVar[str]
    #: the settings key that may replace :attr:`executable` (site-specific image layouts)
    executable_setting: ClassVar[str]
    #: config file names looked for in a design folder, in OpenLane's own order of preference
    config_names: ClassVar[tuple[str, ...]]
    #: the config kinds this flow can run
    supported_kinds: ClassVar[tuple[str, ...]]

    # -- design discovery ------------------------------------------------------------------
    def find_design(
        self,
        repo_root: Path,
        design_path: str = "",
        *,
        pdk: str | None = None,
        scl: str | None = None,
        pdk_root: str = DEFAULT_PDK_ROOT,
    ) -> DesignConfig:
        """Find and read the design config at ``design_path`` inside ``repo_root``.

        An ``openlane-portal.yaml`` manifest at the repository root supplies the design folder
        when ``design_path`` is empty, and may name the config file, PDK and SCL. Raises
        :class:`DesignNotFound` (listing every path tried) or :class:`ManifestError`.
        """
        repo_root = Path(repo_root)
        manifest = load_repo_manifest(repo_root)
        folder = (design_path or "").strip().strip("/")
        config_name: str | None = None
        if manifest is not None:
            if not folder:
                folder = manifest.design
            if _same_folder(folder, manifest.design):
                config_name = manifest.config
                pdk = pdk or manifest.pdk
                scl = scl or manifest.scl
        design_dir = _inside(repo_root, folder, what="design folder")
        candidates = [config_name] if config_name else list(self.config_names)
        looked_for = [design_dir / name for name in candidates]
        if not design_dir.is_dir():
            raise DesignNotFound(design_dir, looked_for, "the folder does not exist")
        for path in looked_for:
            if path.is_file():
                _inside(repo_root, str(path.relative_to(repo_root)), what="design config")
                design = read_design_config(
                    path,
                    design_dir=design_dir,
                    pdk=pdk or DEFAULT_PDK,
                    scl=scl or DEFAULT_SCL,
                    pdk_root=pdk_root,
                    flow=self.name,
                )
                design.pdk, design.scl, design.manifest = pdk, scl, manifest
                if design.kind not in self.supported_kinds:
                    design.errors.append(
                        (None, f"{self.title} cannot run a {design.kind} configuration")
                    )
                return design
        others = sorted(p.name for p in design_dir.glob("config.*") if p.is_file())
        detail = f"found {', '.join(others)} instead" if others else ""
        raise DesignNotFound(design_dir, looked_for, detail)

    # -- per-task configuration ------------------------------------------------------------
    @abstractmethod
    def task_config_name(self, design: DesignConfig) -> str:
        """File name of the per-task config written into ``tasks/<i>/``."""

    #: a symlink to the design folder that each task folder gets (OpenLane 2 resolves the
    #: config's ``dir::`` paths against ``--design-dir``, the task folder), or None
    design_link: ClassVar[str | None] = None

    @abstractmethod
    def task_config_text(
        self,
        design: DesignConfig,
        params: Mapping[str, object],
        *,
        steps: Sequence[str] | None = None,
    ) -> str:
        """The configuration file of one sweep point (named :meth:`task_config_name`).

        ``steps`` (from :meth:`task_steps`) replaces the flow's step list; None keeps it.
        """

    def write_task_config(
        self,
        design: DesignConfig,
        params: Mapping[str, object],
        task_dir: Path,
        *,
        steps: Sequence[str] | None = None,
    ) -> Path:
        """Write one sweep point's config (and :attr:`design_link`) into ``task_dir``, as an
        array task does from the run's packed configs; return the config's path."""
        task_dir = Path(task_dir)
        text = self.task_config_text(design, params, steps=steps)
        task_dir.mkdir(parents=True, exist_ok=True)
        if self.design_link:
            link_design(design.design_dir, task_dir, self.design_link)
        target = task_dir / self.task_config_name(design)
        atomic_write_text(target, text)
        return target

    # -- what this site runs -----------------------------------------------------------------
    def site_steps(self, settings: Mapping[str, object]) -> tuple[str, ...] | None:
        """The flow steps this site can run; None means all of them (the default)."""
        return None

    def task_steps(
        self, design: DesignConfig, settings: Mapping[str, object]
    ) -> tuple[str, ...] | None:
        """The step list every task config of ``design`` gets; None keeps the design's flow.

        Raises :class:`UnsupportedConfig` when the design asks for a step the site cannot run.
        """
        return None

    def check_site(
        self, settings: Mapping[str, object], design: DesignConfig | None = None
    ) -> None:
        """Refuse (:class:`FlowError`, one sentence) a site that cannot run this flow at all:
        no PDK under PDK_ROOT, or a native flow executable that is not there."""
        if setting(settings, "FLOW_EXECUTABLE_OVERRIDE"):
            return  # the stand-in needs neither
        env = self.flow_env(settings, design)
        if not (Path(env["PDK_ROOT"]) / env["PDK"]).is_dir():
            raise FlowError(
                f"this cluster has no {env['PDK']} PDK under its PDK root: an admin must "
                "install it or set PDK_ROOT; nothing was submitted"
            )
        if self.runtime(settings) == "native":
            program = self.flow_executable(settings)
            found = os.access(program, os.X_OK) if os.path.isabs(program) else which(program)
            if not found:
                raise FlowError(
                    f"{self.title} is not installed on this cluster: an admin must install "
                    f"it or set {self.executable_setting}; nothing was submitted"
                )

    def task_env(self, settings: Mapping[str, object]) -> dict[str, str]:
        """Variables the array script exports before the flow runs (see :meth:`runtime_env`)."""
        return {}

    def runtime_env(self, settings: Mapping[str, object], env: Mapping[str, str]) -> dict[str, str]:
        """``env`` as the runtime passes it on: ``APPTAINERENV_<name>`` (or
        ``SINGULARITYENV_``) into a ``--cleanenv`` container, as is for native runs."""
        chosen = self.runtime(settings)
        prefix = "" if chosen == "native" else f"{chosen.upper()}ENV_"
        return {prefix + key: value for key, value in env.items()}

    # -- command line ----------------------------------------------------------------------
    def flow_executable(self, settings: Mapping[str, object]) -> str:
        """The executable run for a task: FLOW_EXECUTABLE_OVERRIDE, else the flow's own."""
        override = setting(settings, "FLOW_EXECUTABLE_OVERRIDE")
        if override:
            override = str(override)
            if not os.path.isabs(override):
                raise FlowError("FLOW_EXECUTABLE_OVERRIDE must be an absolute path")
            return override
        return str(setting(settings, self.executable_setting, self.executable))

    def runtime(self, settings: Mapping[str, object], runtime: str | None = None) -> str:
        """The container runtime in effect (``native`` whenever the executable is overridden)."""
        if setting(settings, "FLOW_EXECUTABLE_OVERRIDE"):
            return "native"
        chosen = runtime or str(setting(settings, "CONTAINER_RUNTIME", "apptainer"))
        if chosen not in RUNTIMES:
            raise FlowError(f"unknown container runtime {chosen!r} (expected one of {RUNTIMES})")
        return chosen

    def flow_env(
        self, settings: Mapping[str, object], design: DesignConfig | None = None
    ) -> dict[str, str]:
        """PDK_ROOT, PDK and STD_CELL_LIBRARY for the task (the design's choice wins)."""
        pdk_root = str(setting(settings, "PDK_ROOT", DEFAULT_PDK_ROOT))
        pdk = (design.pdk if design else None) or str(setting(settings, "PDK", DEFAULT_PDK))
        scl = (design.scl if design else None) or str(
            setting(settings, "STD_CELL_LIBRARY", DEFAULT_SCL)
        )
        _check_env_value("PDK_ROOT", pdk_root, path=True)
        _check_env_value("PDK", pdk)
        _check_env_value("STD_CELL_LIBRARY", scl)
        return {"PDK_ROOT": pdk_root, "PDK": pdk, "STD_CELL_LIBRARY": scl}

    def container_words(
        self,
        settings: Mapping[str, object],
        runtime: str | None = None,
        image: str | None = None,
        *,
        design: DesignConfig | None = None,
    ) -> list[Word]:
        """``apptainer exec --containall --cleanenv --bind "$RUN_DIR" ... <image>`` (or [])."""
        chosen = self.runtime(settings, runtime)
        if chosen == "native":
            return []
        image = image or setting(settings, self.image_setting)
        if not image:
            raise FlowError(f"{self.image_setting} is not set")
        image = str(image)
        if image.startswith("-"):
            raise FlowError(f"invalid image {image!r}")
        env = self.flow_env(settings, design)
        pdk_root = env["PDK_ROOT"]
        words: list[Word] = [chosen, "exec", "--containall", "--cleanenv"]
        words += ["--bind", ShellVar("RUN_DIR"), "--bind", f"{pdk_root}:{pdk_root}:ro"]
        words += ["--pwd", ShellVar("TASK_DIR")]
        for key, value in env.items():
            words += ["--env", f"{key}={value}"]
        words.append(image)
        return words

    @abstractmethod
    def command_words(
        self, settings: Mapping[str, object], design: DesignConfig, config_file_name: str
    ) -> list[Word]:
        """The command run for one task (inside the container when there is one)."""

    def task_words(
        self,
        settings: Mapping[str, object],
        design: DesignConfig,
        config_file_name: str | None = None,
    ) -> list[Word]:
        """Container prefix + flow command: the whole line an array task runs."""
        name = config_file_name or self.task_config_name(design)
        return self.container_words(settings, design=design) + self.command_words(
            settings, design, name
        )

    # -- outputs ---------------------------------------------------------------------------
    def run_dir_for_task(self, task_dir: Path, task_tag: str) -> Path:
        """Where the flow writes the run of one task: ``<task_dir>/runs/<task_tag>``."""
        return Path(task_dir) / "runs" / task_tag

    @abstractmethod
    def metrics_path(self, task_dir: Path, task_tag: str) -> Path:
        """The metrics report the flow writes for one task."""

    @abstractmethod
    def gds_path(self, task_dir: Path, task_tag: str, design_name: str) -> Path:
        """The final GDS the flow writes for one task."""


def _check_env_value(key: str, value: str, *, path: bool = False) -> None:
    if not value or value.startswith("-") or any(c in value for c in ":,\n\x00"):
        raise FlowError(f"invalid {key} {value!r}")
    if path and not os.path.isabs(value):
        raise FlowError(f"{key} must be an absolute path, got {value!r}")


def _same_folder(a: str, b: str) -> bool:
    return os.path.normpath(a or ".") == os.path.normpath(b or ".")


def _inside(repo_root: Path, relative: str, *, what: str) -> Path:
    """``repo_root/relative``, refusing absolute paths and anything resolving outside the root."""
    if os.path.isabs(relative) or "\x00" in relative:
        raise DesignNotFound(repo_root / relative.lstrip("/"), [], f"{what} must be relative")
    candidate = repo_root / relative if relative else repo_root
    root_real = os.path.realpath(repo_root)
    real = os.path.realpath(candidate)
    if real != root_real and not real.startswith(root_real + os.sep):
        raise DesignNotFound(candidate, [], f"{what} is outside the repository")
    return candidate
