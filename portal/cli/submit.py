"""``portal submit``: one design or sweep as ONE Slurm job array, or ``--dry-run`` to see the
script and tasks first (locally or through ``--server``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from flask import Flask

from portal.cli.common import (
    MAX_SWEEP_FILE_BYTES,
    acting_user,
    fail,
    print_submission,
    remote_or_local,
    show_submission,
)

if TYPE_CHECKING:
    from portal.apiclient import PortalClient


def parse_mem(text: str) -> int:
    """``4096``, ``4096M``, ``4G`` -> MB."""
    match = re.fullmatch(r"(\d+)\s*([MmGgTt]?)[Bb]?", text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not a memory size like 4096, 4096M or 4G")
    scale = {"": 1, "m": 1, "g": 1024, "t": 1024 * 1024}[match.group(2).lower()]
    return int(match.group(1)) * scale


def parse_time(text: str) -> int:
    """Slurm time formats (``60``, ``01:30:00``, ``1-00:00:00``) -> minutes."""
    from portal.slurm.commands import SlurmParseError, parse_time_limit

    try:
        minutes = parse_time_limit(text)
    except SlurmParseError:
        minutes = None
    if not minutes:
        raise click.BadParameter(f"{text!r} is not a time limit like 60, 01:30:00 or 1-00:00:00")
    return minutes


def _pairs(args: tuple[str, ...], flag: str) -> dict[str, str]:
    """``NAME=VALUE`` words -> a mapping (the server checks names and values)."""
    out: dict[str, str] = {}
    for arg in args:
        name, sep, value = arg.partition("=")
        name = name.strip()
        if not sep or not name:
            fail(f"{flag} expects NAME=VALUE, got {arg!r}")
        if name in out:
            fail(f"{flag} {name} given twice")
        out[name] = value
    return out


def _read_sweep_file(path: Path) -> dict[str, Any]:
    """A sweep file (YAML or JSON) as a mapping, for the server to check."""
    import yaml

    if path.stat().st_size > MAX_SWEEP_FILE_BYTES:
        fail(f"{path} is larger than {MAX_SWEEP_FILE_BYTES // (1024 * 1024)} MB")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        fail(f"{path}: {exc}")
    if not isinstance(data, dict):
        fail(f"{path}: a sweep file holds a mapping (kind, parameters, ...)")
    return data


def _dry_run_text(summary: dict[str, Any]) -> str:
    """The CLI's form of a dry run's answer (:func:`portal.submit.dry_run`, local or remote)."""
    reasons = summary.get("reasons") or []
    line = f"{summary['tasks']} task(s), {summary['core_hours']:.1f} core-hours" + (
        "; needs admin approval: " + "; ".join(reasons) if summary["needs_approval"] else ""
    )
    return "\n".join([summary["script"], _points_table(summary["points"]), line])


def _points_table(points: list[dict[str, Any]]) -> str:
    from portal.submit.sweeps import sweep_table

    rows = [line.split("\t") for line in sweep_table(points).splitlines()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


@dataclass(frozen=True)
class SubmitOptions:
    """What ``portal submit`` was asked for, as typed (local and remote alike)."""

    repo: str
    ref: str
    design_path: str
    flow: str
    sets: tuple[str, ...]
    sweeps: tuple[str, ...]
    zip_sweeps: bool
    sweep_file: Path | None
    cpus: int
    mem: str
    time_limit: str
    partition: str | None
    account: str | None
    qos: str | None
    throttle: int
    name: str
    no_notify: bool

    def resources(self, default_account: str | None = None) -> dict[str, Any]:
        """The resources per task (``fail`` on a bad memory size or time limit)."""
        try:
            return {
                "cpus": self.cpus,
                "mem_mb": parse_mem(self.mem),
                "time_minutes": parse_time(self.time_limit),
                "partition": self.partition,
                "account": self.account or default_account,
                "qos": self.qos,
                "throttle": self.throttle,
            }
        except click.BadParameter as exc:
            fail(exc.message)

    def sweep(
        self, from_file: Callable[[Path], dict[str, Any]]
    ) -> tuple[dict[str, Any] | None, tuple[str, ...]]:
        """The sweep (the file read by ``from_file``; with ``--zip`` the ``--sweep`` lists as
        one zip sweep instead) and the ``--sweep`` words left for a grid."""
        if self.zip_sweeps and self.sweeps:
            return {"kind": "zip", "parameters": _pairs(self.sweeps, "--sweep")}, ()
        return (from_file(self.sweep_file) if self.sweep_file else None), self.sweeps


def submit_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options of ``portal submit`` (all but --dry-run, --user, --json), collected into
    one :class:`SubmitOptions` passed after the app or API client."""

    @functools.wraps(func)
    def collect(*args: Any, **kwargs: Any) -> Any:
        names = [f.name for f in dataclasses.fields(SubmitOptions)]
        options = SubmitOptions(**{name: kwargs.pop(name) for name in names})
        return func(options, *args, **kwargs)

    for decorate in reversed(
        [
            click.option("--repo", required=True, help="Git URL of the design repository"),
            click.option("--ref", default="main", show_default=True, help="branch, tag or commit"),
            click.option(
                "--design", "design_path", default="", help="design folder inside the repository"
            ),
            click.option(
                "--flow",
                default="openlane1",
                show_default=True,
                type=click.Choice(["openlane1", "openlane2", "librelane"]),
            ),
            click.option(
                "--set", "sets", multiple=True, metavar="NAME=VALUE", help="fixed parameter"
            ),
            click.option("--sweep", "sweeps", multiple=True, metavar="NAME=V1,V2|START:STOP:STEP"),
            click.option(
                "--zip", "zip_sweeps", is_flag=True, help="pair --sweep lists instead of a grid"
            ),
            click.option(
                "--sweep-file", type=click.Path(dir_okay=False, exists=True, path_type=Path)
            ),
            click.option("--cpus", default=1, show_default=True, type=click.IntRange(min=1)),
            click.option(
                "--mem", default="4G", show_default=True, help="memory per task (4096, 4G)"
            ),
            click.option("--time", "time_limit", default="01:00:00", show_default=True),
            click.option("--partition"),
            click.option("--account"),
            click.option("--qos"),
            click.option(
                "--throttle", default=0, type=click.IntRange(min=0), help="max tasks at once"
            ),
            click.option("--name", default="", help="a name to recognise the submission by"),
            click.option("--no-notify", is_flag=True, help="no email when it finishes"),
        ]
    ):
        collect = decorate(collect)
    return collect


def _submit_remote(
    client: PortalClient, options: SubmitOptions, dry_run: bool, as_json: bool
) -> None:
    resources = options.resources()
    sweep, sweeps = options.sweep(_read_sweep_file)
    answer = client.submit(
        options.repo,
        ref=options.ref,
        design_path=options.design_path,
        flow=options.flow,
        params=_pairs(options.sets, "--set"),
        sweep=sweep,
        sweeps=sweeps,
        resources=resources,
        name=options.name,
        notify=not options.no_notify,
        dry_run=dry_run,
    )
    if dry_run:
        click.echo(_dry_run_text(answer))
        return
    tasks = client.tasks(answer["uuid"])
    print_submission(answer, tasks, as_json)
    if answer["state"] == "SUBMIT_FAILED":
        sys.exit(1)


@click.command()
@submit_options
@click.option("--dry-run", is_flag=True, help="print the script and tasks; submit nothing")
@click.option("--user", "username", help="act as this portal user")
@click.option("--json", "as_json", is_flag=True)
@remote_or_local(_submit_remote)
def submit(
    app: Flask, options: SubmitOptions, dry_run: bool, username: str | None, as_json: bool
) -> None:
    """Submit a design (optionally a sweep) as ONE Slurm job array."""
    from portal import submit as svc
    from portal.cluster.connect import slurm_client
    from portal.slurm.client import SlurmError
    from portal.slurm.transports import TransportError
    from portal.submit.background import submit_request
    from portal.submit.sweeps import SweepError, load_sweep_file, parse_cli_sets

    owner = acting_user(username)
    resources = svc.Resources(**options.resources(owner.slurm_account))
    try:
        params = parse_cli_sets(options.sets)
        sweep, sweeps = options.sweep(lambda path: load_sweep_file(path).to_dict())
    except SweepError as exc:
        fail(str(exc))
    request = svc.SubmissionRequest(
        repo_url=options.repo,
        ref=options.ref,
        design_path=options.design_path,
        flow=options.flow,
        params=params,
        sweep=sweep,
        cli_sweeps=sweeps,
        resources=resources,
        name=options.name,
        notify=not options.no_notify,
    )
    try:
        if dry_run:
            slurm = slurm_client(app.config, owner)  # a missing Unix account is refused here
            plan = svc.plan_submission(request, app.config, slurm, owner=owner)
            click.echo(_dry_run_text(svc.dry_run(plan, app.config, owner)))
            return
        submission = submit_request(
            app,
            request,
            owner,
            background=False,
            progress=_progress_printer(as_json),
            cached=False,
        )
    except svc.SubmissionError as exc:
        fail(str(exc))
    except (SlurmError, TransportError) as exc:
        fail(f"Slurm does not answer ({exc}); nothing was submitted")
    show_submission(app, submission, as_json)
    if submission.state == "SUBMIT_FAILED":
        sys.exit(1)


def _progress_printer(quiet: bool) -> Callable[[str, float | None], None]:
    def show(stage: str, fraction: float | None) -> None:
        if not quiet:
            pct = f" {fraction:4.0%}" if fraction is not None else ""
            click.echo(f"  {stage}{pct}", err=True)

    return show
