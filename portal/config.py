"""Portal settings: one typed, documented, frozen model, overridden by an instance file and
``PORTAL_*`` variables, validated once when the app is built.

Every knob is a field of :class:`Settings` with its type, default and a one-line description;
:data:`DEFAULTS` and :data:`DOCS` are read from it, and ``portal settings`` lists every knob
with its value and description. Values from the environment are parsed as JSON when they look
like JSON (numbers, booleans, lists), else kept as strings. A value of the wrong type or sign
stops the portal at start with :class:`SettingsError` naming the setting.

The services (``submit``, ``track``, ``mail``, ``cluster``) read settings as attributes of
:class:`Settings`; they accept a mapping too (``app.config``, a test's dict) and validate it
into one with :func:`as_settings`, so every default is said once, here. ``flows`` and ``slurm``,
below this module, read the same object by name (``settings["PDK_ROOT"]``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

#: A whole number of things (attempts, points, megabytes, a port), never negative.
Count = Annotated[int, Field(ge=0)]
#: A duration in seconds, never negative.
Seconds = Annotated[int | float, Field(ge=0)]
#: A non-negative amount (core-hours).
Amount = Annotated[int | float, Field(ge=0)]
#: Names (hosts, QOS): a list, or one name alone (``PORTAL_GIT_ALLOWED_HOSTS=gitlab.internal``
#: is not JSON and arrives as a string).
Names = Annotated[
    list[str], BeforeValidator(lambda value: [value] if isinstance(value, str) else value)
]
#: A share between 0 and 1.
Share = Annotated[float, Field(ge=0, le=1)]


class SettingsError(ValueError):
    """Settings the portal cannot start with; the message names every bad setting."""


class Settings(BaseModel):
    """Every setting of the portal. Other keys (Flask's, SQLAlchemy's) pass through as extras."""

    model_config = ConfigDict(frozen=True, extra="allow", coerce_numbers_to_str=True)

    SECRET_KEY: str | None = Field(
        None,
        description="Signs sessions, CSRF tokens and share links. Generated into the instance "
        "folder on first start when unset.",
    )
    SQLALCHEMY_DATABASE_URI: str | None = Field(
        None,
        description="Database URL; default sqlite:///<instance>/portal.db. PostgreSQL: "
        "postgresql+psycopg://user@host/db.",
    )
    RUN_ROOT: str | None = Field(
        None,
        description="Shared-filesystem folder holding runs/<uuid>/; default <instance>/runs.",
    )
    SITE_URL: str = Field(
        "http://127.0.0.1:5000",
        description="Public base URL, used in emails and share links.",
    )

    # -- Slurm
    SLURM_TRANSPORT: str = Field(
        "local",
        description="How Slurm commands run: 'local' (subprocess) or 'ssh' (Paramiko).",
    )
    SLURM_SSH_HOST: str | None = Field(None, description="Login node for the ssh transport.")
    SLURM_SSH_PORT: Count = Field(22, description="SSH port of the login node.")
    SLURM_SSH_USER: str | None = Field(None, description="SSH user for the ssh transport.")
    SLURM_SSH_KEY_FILE: str | None = Field(
        None,
        description="Private key for the ssh transport (key auth only).",
    )
    SLURM_SSH_KNOWN_HOSTS: str | None = Field(
        None,
        description="known_hosts file; unknown host keys are refused.",
    )
    SLURM_RUN_AS: str = Field(
        "service",
        description="'service' (portal account, --account/--comment) or 'user' (sudo -n -u; needs "
        "SLURM_TRANSPORT=local, a unix_user per user, a sudoers rule and a shared RUN_ROOT "
        "group: see docs/operators.md).",
    )
    SLURM_PARTITION: str | None = Field(
        None,
        description="Default partition; empty means the cluster default.",
    )
    SLURM_DEFAULT_ACCOUNT: str | None = Field(
        None,
        description="Slurm account charged when the user has none. A designer may charge only "
        "their own account (set by an admin), else this one; with SLURM_RUN_AS=user also the "
        "accounts of their Slurm associations (sacctmgr). Anything else is refused.",
    )
    SLURM_ALLOWED_QOS: Names = Field(
        [],
        description="QOS names every designer may ask for (empty: only the account's default); "
        "with SLURM_RUN_AS=user also those of their Slurm associations.",
    )
    SLURM_COMMAND_TIMEOUT: Seconds = Field(
        60,
        description="Seconds before a Slurm command is abandoned.",
    )
    SLURM_ARRAY_THROTTLE: Count = Field(
        0,
        description="Default %throttle of job arrays; 0 means no throttle.",
    )
    SLURM_JOB_COUNT_SHARE: Share = Field(
        0.8,
        description="An array over 1 % of MaxJobCount is submitted only if the cluster's job "
        "records (every array task counts; one squeue) stay within this share of MaxJobCount; "
        "otherwise the launch ends SUBMIT_FAILED, retryable (a full slurmctld blocks every "
        "user's sbatch).",
    )
    POLL_INTERVAL_SECONDS: Seconds = Field(15, description="Seconds between sacct poll cycles.")
    LAUNCH_MAX_ATTEMPTS: Count = Field(
        6,
        description="Launches tried when the cause is passing (Slurm controller or Git host "
        "unreachable) before a submission stays SUBMIT_FAILED, its owner is emailed and may "
        "retry it.",
    )
    LAUNCH_RETRY_BASE_SECONDS: Seconds = Field(
        30,
        description="Wait before the second launch attempt; it doubles after each one (at most 10 "
        "minutes).",
    )
    LAUNCH_CLAIM_SECONDS: Seconds = Field(
        60,
        description="A launch claims its submission for this long and renews the claim while it "
        "works (every third of it); the poller relaunches a submission left in STAGING or "
        "SUBMITTING only once its claim has expired (the process that launched it died).",
    )
    POLLER_ENABLED: bool = Field(
        False,
        description="Start the scheduled poller inside this process.",
    )
    POLL_LEASE_SECONDS: Seconds = Field(
        60,
        description="Lease length that keeps exactly one poller active.",
    )

    # -- Flows and containers
    CONTAINER_RUNTIME: str = Field("apptainer", description="apptainer | singularity | native.")
    OPENLANE1_IMAGE: str = Field(
        "/apps/openlane/openlane.sif",
        description="OpenLane 1 image on shared storage.",
    )
    OPENLANE2_IMAGE: str = Field(
        "/apps/openlane/openlane2.sif",
        description="OpenLane 2 image on shared storage.",
    )
    LIBRELANE_IMAGE: str = Field(
        "/apps/openlane/librelane.sif",
        description="LibreLane image on shared storage.",
    )
    PDK_ROOT: str = Field(
        "/apps/pdks",
        description="PDK root on shared storage, bound read-only into the container.",
    )
    PDK: str = Field("sky130A", description="Default PDK.")
    STD_CELL_LIBRARY: str = Field("sky130_fd_sc_hd", description="Default standard-cell library.")
    FLOW_EXECUTABLE_OVERRIDE: str | None = Field(
        None,
        description="Run this executable instead of the flow (the test double in demos and "
        "tests); the UI says so plainly.",
    )
    OPENLANE1_EXECUTABLE: str = Field(
        "flow.tcl",
        description="OpenLane 1's entry point inside its image.",
    )
    OPENLANE2_EXECUTABLE: str = Field(
        "openlane",
        description="OpenLane 2's entry point inside its image.",
    )
    LIBRELANE_EXECUTABLE: str = Field(
        "librelane",
        description="LibreLane's entry point inside its image (with CONTAINER_RUNTIME=native: the "
        "librelane program on the compute nodes, e.g. /apps/librelane/bin/librelane from the "
        "librelane role).",
    )
    LIBRELANE_STEPS: str | list[str] | None = Field(
        None,
        description="The LibreLane steps this cluster can run: empty for all of them; 'synthesis' "
        "where OpenROAD is missing (lint, Yosys synthesis, then pre-layout timing and power with "
        "a stand-alone OpenSTA); or a list of step ids. Every task's meta.flow is cut to them, "
        "and the form, the submission page and the email say so.",
    )
    LIBRELANE_YOSYS: str | None = Field(
        None,
        description="The yosys program LibreLane runs as 'yosys -y script.py' (exported as "
        "_LLN_OVERRIDE_YOSYS): the yosys-pyosys wrapper where Yosys is the pyosys wheel; empty "
        "for LibreLane's default.",
    )
    LIBRELANE_STA: str | None = Field(
        None,
        description="The stand-alone OpenSTA program of the Portal.PrePnRSTA step (exported as "
        "PORTAL_STA); empty for 'sta' on PATH.",
    )
    OPENLANE1_IGNORE_MISMATCHES: bool = Field(
        False,
        description="Pass -ignore_mismatches to flow.tcl (tool version checks).",
    )

    # -- Policy
    MAX_SWEEP_POINTS: Count = Field(10000, description="Largest sweep accepted.")
    APPROVAL_CORE_HOURS: Amount = Field(
        500.0,
        description="Submissions costing more core-hours wait for an admin.",
    )
    APPROVAL_ARRAY_SIZE: Count = Field(
        1000,
        description="Submissions with more tasks wait for an admin.",
    )

    # -- Git staging
    GIT_ALLOW_FILE_URLS: bool = Field(
        False,
        description="Allow file:// repository URLs (admin setting).",
    )
    GIT_ALLOWED_HOSTS: Names = Field(
        [],
        description="If non-empty, only these Git hosts are accepted.",
    )
    GIT_ALLOWED_PRIVATE_HOSTS: Names = Field(
        [],
        description="Hosts or addresses on private, loopback or link-local networks the portal "
        "may clone from anyway, e.g. the site's internal GitLab: host names, *.domain suffixes, "
        "addresses or networks (10.1.0.0/16). Every other repository host must resolve to public "
        "addresses only (checked at submit and before each clone). The demo and the tests list "
        "their own loopback git daemon here.",
    )
    GIT_CLONE_TIMEOUT: Seconds = Field(300, description="Seconds before a clone is abandoned.")
    GIT_MAX_REPO_MB: Count = Field(500, description="Largest checkout accepted, in MiB.")
    PREVIEW_FETCHES: Count = Field(
        2,
        description="Repositories cloned at once for previews and dry runs (each user one at a "
        "time); more answer 'busy'.",
    )
    PREVIEW_WAIT_SECONDS: Seconds = Field(
        2,
        description="How long a preview or dry-run request waits for its clone before it answers "
        "'still fetching' (the ref itself is resolved with git ls-remote in at most 3 s).",
    )
    PREVIEW_CACHE_SECONDS: Seconds = Field(
        600,
        description="How long a preview's checkout is kept (by commit) after its last use.",
    )
    PREVIEW_CACHE_DIR: str | None = Field(
        None,
        description="Where previews' checkouts are kept; empty: a folder in the system's "
        "temporary directory.",
    )

    # -- Mail
    MAIL_SERVER: str = Field("localhost", description="SMTP host.")
    MAIL_PORT: Count = Field(25, description="SMTP port.")
    MAIL_USE_TLS: bool = Field(False, description="Use STARTTLS.")
    MAIL_USE_SSL: bool = Field(False, description="Use implicit TLS (SMTPS).")
    MAIL_USERNAME: str | None = Field(None, description="SMTP user.")
    MAIL_PASSWORD: str | None = Field(
        None,
        description="SMTP password (set it through the environment).",
    )
    MAIL_DEFAULT_SENDER: str = Field("openlane-portal@localhost", description="From address.")
    MAIL_MAX_TRIES: Count = Field(12, description="Delivery attempts before a message is given up.")
    MAIL_SEND_INTERVAL_SECONDS: Seconds = Field(
        10,
        description="Seconds between mail sending cycles.",
    )
    MAIL_RETRY_BASE_SECONDS: Seconds = Field(
        30,
        description="First retry delay; doubles after each failed try.",
    )
    MAIL_RETRY_MAX_SECONDS: Seconds = Field(3600, description="Upper limit of the retry delay.")
    MAIL_TIMEOUT: Seconds = Field(30, description="SMTP socket timeout in seconds.")
    MAIL_LEASE_SECONDS: Seconds = Field(
        300,
        description="Length of the lease that keeps one mail sender active.",
    )
    MAIL_TLS_CA_FILE: str | None = Field(
        None,
        description="CA bundle to check the SMTP server's certificate (system CAs if empty).",
    )

    # -- Accounts
    REGISTRATION: str = Field(
        "admin-activated",
        description="open | invite-only | admin-activated.",
    )

    # -- Web
    LAUNCH_IN_BACKGROUND: bool = Field(
        True,
        description="Web and API submissions stage and sbatch in a background thread (the request "
        "answers at once); false runs them inside the request.",
    )
    SHARE_LINK_MAX_AGE: Seconds = Field(
        7 * 24 * 3600,
        description="Longest lifetime, in seconds, of a signed share link.",
    )
    PREVIEW_RATE_LIMIT: str = Field(
        "10 per minute",
        description="sbatch previews per user (each one clones the repository).",
    )
    SUBMIT_RATE_LIMIT: str = Field(
        "30 per minute",
        description="Submissions posted per user, from the form or the API.",
    )
    API_RATE_LIMIT: str = Field("600 per minute", description="API requests per token.")
    METRICS_TOKEN: str | None = Field(
        None,
        description="If set, /metrics needs 'Authorization: Bearer <METRICS_TOKEN>'.",
    )
    TRUSTED_PROXIES: Count = Field(
        0,
        description="Reverse proxies in front of the portal (nginx: 1) whose X-Forwarded-* "
        "headers are trusted; 0 trusts none.",
    )
    RATELIMIT_STORAGE_URI: str = Field(
        "memory://",
        description="Flask-Limiter storage (memory:// per process; redis://... shared by all "
        "gunicorn workers).",
    )
    RATELIMIT_ENABLED: bool = Field(True, description="Apply the rate limits below.")
    LOGIN_RATE_LIMIT: str = Field(
        "5 per minute",
        description="Login attempts per client address and login name.",
    )
    LOGIN_IP_RATE_LIMIT: str = Field(
        "30 per minute",
        description="Login attempts per client address.",
    )
    LOGIN_LOCKOUT: str = Field(
        "10 per 10 minutes; 30 per hour; 100 per day",
        description="Failed logins per account (from any address) before it is locked out.",
    )
    PASSWORD_RESET_RATE_LIMIT: str = Field(
        "5 per 15 minutes",
        description="Password reset requests per client address.",
    )
    REGISTER_RATE_LIMIT: str = Field("10 per hour", description="Registrations per client address.")
    PASSWORD_RESET_MAX_AGE: Seconds = Field(
        3600,
        description="Lifetime of an emailed password reset link, in seconds.",
    )
    INVITE_MAX_AGE: Seconds = Field(
        7 * 24 * 3600,
        description="Lifetime of an invitation link, in seconds.",
    )
    REMEMBER_COOKIE_DURATION: Seconds = Field(
        14 * 24 * 3600,
        description="Lifetime of the 'remember me' cookie, in seconds.",
    )

    @classmethod
    def check(cls, values: Mapping[str, Any]) -> Settings:
        """Validate ``values`` (the app's config: other keys are kept as extras); raise
        :class:`SettingsError` listing every setting of the wrong type or out of range."""
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            problems = [
                f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']} (got {error['input']!r})"
                for error in exc.errors()
            ]
            raise SettingsError("invalid settings: " + "; ".join(problems)) from None

    # Read access by name, for the layers below (flows, slurm) that take a mapping.
    def __getitem__(self, key: str) -> Any:
        if key in type(self).model_fields:
            return getattr(self, key)
        return (self.model_extra or {})[key]

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields or key in (self.model_extra or {})

    def get(self, key: str, default: Any = None) -> Any:
        """``settings[key]``, or ``default`` for a key it does not have."""
        return self[key] if key in self else default  # noqa: SIM401 (this is get itself)


#: What the services accept: the settings, or a mapping of them (``app.config``, a test's dict).
SettingsLike = Settings | Mapping[str, Any]


def as_settings(values: SettingsLike) -> Settings:
    """``values`` as :class:`Settings`: itself, or a mapping (``app.config``, a test's dict)
    validated, with every missing knob at its default."""
    return values if isinstance(values, Settings) else Settings.check(values)


def settings_of(app: Any) -> Settings:
    """The app's settings as they are now (built from ``app.config``, about 15 µs; the app
    factory validated them once already)."""
    return Settings.check(app.config)


#: Every setting's default (read from :class:`Settings`).
DEFAULTS: dict[str, Any] = {name: field.default for name, field in Settings.model_fields.items()}
#: Every setting's one-line description.
DOCS: dict[str, str] = {
    name: str(field.description) for name, field in Settings.model_fields.items()
}

ENV_PREFIX = "PORTAL_"


def _parse_env_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def load_settings(instance_path: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the effective settings: defaults < instance ``portal.json`` < env < overrides."""
    settings = dict(DEFAULTS)
    instance_file = instance_path / "portal.json"
    if instance_file.is_file():
        settings.update(json.loads(instance_file.read_text()))
    for key in DEFAULTS:
        if ENV_PREFIX + key in os.environ:
            settings[key] = _parse_env_value(os.environ[ENV_PREFIX + key])
    if overrides:
        settings.update(overrides)
    if not settings["SQLALCHEMY_DATABASE_URI"]:
        settings["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{instance_path / 'portal.db'}"
    if not settings["RUN_ROOT"]:
        settings["RUN_ROOT"] = str(instance_path / "runs")
    if not settings["SECRET_KEY"]:
        settings["SECRET_KEY"] = _instance_secret(instance_path)
    # A pooled connection the database dropped (a restart) is replaced before it is used.
    settings.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_pre_ping": True})
    return settings


def _instance_secret(instance_path: Path) -> str:
    """Read (or create once, mode 0600) the instance's secret key."""
    key_file = instance_path / "secret_key"
    if not key_file.exists():
        instance_path.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(os.urandom(32).hex())
    return key_file.read_text().strip()
