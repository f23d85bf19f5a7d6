"""Portal settings: documented defaults, overridden by an instance file and ``PORTAL_*`` variables.

Every knob lives in :data:`DEFAULTS` with a one-line description in :data:`DOCS`, so
``portal config show`` and ``docs/configuration.md`` list the same thing. Values from the
environment are parsed as JSON when they look like JSON (numbers, booleans, lists), else kept
as strings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "SECRET_KEY": None,
    "SQLALCHEMY_DATABASE_URI": None,
    "RUN_ROOT": None,
    "SITE_URL": "http://127.0.0.1:5000",
    # Slurm
    "SLURM_TRANSPORT": "local",
    "SLURM_SSH_HOST": None,
    "SLURM_SSH_PORT": 22,
    "SLURM_SSH_USER": None,
    "SLURM_SSH_KEY_FILE": None,
    "SLURM_SSH_KNOWN_HOSTS": None,
    "SLURM_RUN_AS": "service",
    "SLURM_PARTITION": None,
    "SLURM_DEFAULT_ACCOUNT": None,
    "SLURM_ALLOWED_QOS": [],
    "SLURM_COMMAND_TIMEOUT": 60,
    "SLURM_ARRAY_THROTTLE": 0,
    "SLURM_JOB_COUNT_SHARE": 0.8,
    "POLL_INTERVAL_SECONDS": 15,
    "LAUNCH_MAX_ATTEMPTS": 6,
    "LAUNCH_RETRY_BASE_SECONDS": 30,
    "LAUNCH_CLAIM_SECONDS": 60,
    "POLLER_ENABLED": False,
    "POLL_LEASE_SECONDS": 60,
    # Flows and containers
    "CONTAINER_RUNTIME": "apptainer",
    "OPENLANE1_IMAGE": "/apps/openlane/openlane.sif",
    "OPENLANE2_IMAGE": "/apps/openlane/openlane2.sif",
    "LIBRELANE_IMAGE": "/apps/openlane/librelane.sif",
    "PDK_ROOT": "/apps/pdks",
    "PDK": "sky130A",
    "STD_CELL_LIBRARY": "sky130_fd_sc_hd",
    "FLOW_EXECUTABLE_OVERRIDE": None,
    "OPENLANE1_EXECUTABLE": "flow.tcl",
    "OPENLANE2_EXECUTABLE": "openlane",
    "LIBRELANE_EXECUTABLE": "librelane",
    "LIBRELANE_STEPS": None,
    "LIBRELANE_YOSYS": None,
    "LIBRELANE_STA": None,
    "OPENLANE1_IGNORE_MISMATCHES": False,
    # Policy
    "MAX_SWEEP_POINTS": 10000,
    "APPROVAL_CORE_HOURS": 500.0,
    "APPROVAL_ARRAY_SIZE": 1000,
    # Git staging
    "GIT_ALLOW_FILE_URLS": False,
    "GIT_ALLOWED_HOSTS": [],
    "GIT_ALLOWED_PRIVATE_HOSTS": [],
    "GIT_CLONE_TIMEOUT": 300,
    "GIT_MAX_REPO_MB": 500,
    "PREVIEW_FETCHES": 2,
    "PREVIEW_WAIT_SECONDS": 2,
    "PREVIEW_CACHE_SECONDS": 600,
    "PREVIEW_CACHE_DIR": None,
    # Mail
    "MAIL_SERVER": "localhost",
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,
    "MAIL_USE_SSL": False,
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    "MAIL_DEFAULT_SENDER": "openlane-portal@localhost",
    "MAIL_MAX_TRIES": 12,
    "MAIL_SEND_INTERVAL_SECONDS": 10,
    "MAIL_RETRY_BASE_SECONDS": 30,
    "MAIL_RETRY_MAX_SECONDS": 3600,
    "MAIL_TIMEOUT": 30,
    "MAIL_LEASE_SECONDS": 300,
    "MAIL_TLS_CA_FILE": None,
    # Accounts
    "REGISTRATION": "admin-activated",
    # Web
    "LAUNCH_IN_BACKGROUND": True,
    "SHARE_LINK_MAX_AGE": 7 * 24 * 3600,
    "PREVIEW_RATE_LIMIT": "10 per minute",
    "SUBMIT_RATE_LIMIT": "30 per minute",
    "API_RATE_LIMIT": "600 per minute",
    "METRICS_TOKEN": None,
    "TRUSTED_PROXIES": 0,
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_ENABLED": True,
    "LOGIN_RATE_LIMIT": "5 per minute",
    "LOGIN_IP_RATE_LIMIT": "30 per minute",
    "LOGIN_LOCKOUT": "10 per 10 minutes; 30 per hour; 100 per day",
    "PASSWORD_RESET_RATE_LIMIT": "5 per 15 minutes",
    "REGISTER_RATE_LIMIT": "10 per hour",
    "PASSWORD_RESET_MAX_AGE": 3600,
    "INVITE_MAX_AGE": 7 * 24 * 3600,
    "REMEMBER_COOKIE_DURATION": 14 * 24 * 3600,
}

DOCS: dict[str, str] = {
    "SECRET_KEY": "Signs sessions, CSRF tokens and share links. Generated into the instance "
    "folder on first start when unset.",
    "SQLALCHEMY_DATABASE_URI": "Database URL; default sqlite:///<instance>/portal.db. "
    "PostgreSQL: postgresql+psycopg://user@host/db.",
    "RUN_ROOT": "Shared-filesystem folder holding runs/<uuid>/; default <instance>/runs.",
    "SITE_URL": "Public base URL, used in emails and share links.",
    "SLURM_TRANSPORT": "How Slurm commands run: 'local' (subprocess) or 'ssh' (Paramiko).",
    "SLURM_SSH_HOST": "Login node for the ssh transport.",
    "SLURM_SSH_PORT": "SSH port of the login node.",
    "SLURM_SSH_USER": "SSH user for the ssh transport.",
    "SLURM_SSH_KEY_FILE": "Private key for the ssh transport (key auth only).",
    "SLURM_SSH_KNOWN_HOSTS": "known_hosts file; unknown host keys are refused.",
    "SLURM_RUN_AS": "'service' (portal account, --account/--comment) or 'user' (sudo -n -u; "
    "needs SLURM_TRANSPORT=local, a unix_user per user, a sudoers rule and a shared RUN_ROOT "
    "group: see docs/operators.md).",
    "SLURM_PARTITION": "Default partition; empty means the cluster default.",
    "SLURM_DEFAULT_ACCOUNT": "Slurm account charged when the user has none. A designer may "
    "charge only their own account (set by an admin), else this one; with SLURM_RUN_AS=user "
    "also the accounts of their Slurm associations (sacctmgr). Anything else is refused.",
    "SLURM_ALLOWED_QOS": "QOS names every designer may ask for (empty: only the account's "
    "default); with SLURM_RUN_AS=user also those of their Slurm associations.",
    "SLURM_COMMAND_TIMEOUT": "Seconds before a Slurm command is abandoned.",
    "SLURM_ARRAY_THROTTLE": "Default %throttle of job arrays; 0 means no throttle.",
    "SLURM_JOB_COUNT_SHARE": "An array over 1 % of MaxJobCount is submitted only if the "
    "cluster's job records (every array task counts; one squeue) stay within this share of "
    "MaxJobCount; otherwise the launch ends SUBMIT_FAILED, retryable (a full slurmctld blocks "
    "every user's sbatch).",
    "POLL_INTERVAL_SECONDS": "Seconds between sacct poll cycles.",
    "LAUNCH_MAX_ATTEMPTS": "Launches tried when the cause is passing (Slurm controller or Git "
    "host unreachable) before a submission stays SUBMIT_FAILED, its owner is emailed and may "
    "retry it.",
    "LAUNCH_RETRY_BASE_SECONDS": "Wait before the second launch attempt; it doubles after "
    "each one (at most 10 minutes).",
    "LAUNCH_CLAIM_SECONDS": "A launch claims its submission for this long and renews the claim "
    "while it works (every third of it); the poller relaunches a submission left in STAGING or "
    "SUBMITTING only once its claim has expired (the process that launched it died).",
    "POLLER_ENABLED": "Start the scheduled poller inside this process.",
    "POLL_LEASE_SECONDS": "Lease length that keeps exactly one poller active.",
    "CONTAINER_RUNTIME": "apptainer | singularity | native.",
    "OPENLANE1_IMAGE": "OpenLane 1 image on shared storage.",
    "OPENLANE2_IMAGE": "OpenLane 2 image on shared storage.",
    "LIBRELANE_IMAGE": "LibreLane image on shared storage.",
    "PDK_ROOT": "PDK root on shared storage, bound read-only into the container.",
    "PDK": "Default PDK.",
    "STD_CELL_LIBRARY": "Default standard-cell library.",
    "FLOW_EXECUTABLE_OVERRIDE": "Run this executable instead of the flow (the test double "
    "in demos and tests); the UI says so plainly.",
    "OPENLANE1_EXECUTABLE": "OpenLane 1's entry point inside its image.",
    "OPENLANE2_EXECUTABLE": "OpenLane 2's entry point inside its image.",
    "LIBRELANE_EXECUTABLE": "LibreLane's entry point inside its image (with "
    "CONTAINER_RUNTIME=native: the librelane program on the compute nodes, e.g. "
    "/apps/librelane/bin/librelane from the librelane role).",
    "LIBRELANE_STEPS": "The LibreLane steps this cluster can run: empty for all of them; "
    "'synthesis' where OpenROAD is missing (lint, Yosys synthesis, then pre-layout timing and "
    "power with a stand-alone OpenSTA); or a list of step ids. Every task's meta.flow is cut "
    "to them, and the form, the submission page and the email say so.",
    "LIBRELANE_YOSYS": "The yosys program LibreLane runs as 'yosys -y script.py' (exported as "
    "_LLN_OVERRIDE_YOSYS): the yosys-pyosys wrapper where Yosys is the pyosys wheel; empty "
    "for LibreLane's default.",
    "LIBRELANE_STA": "The stand-alone OpenSTA program of the Portal.PrePnRSTA step (exported "
    "as PORTAL_STA); empty for 'sta' on PATH.",
    "OPENLANE1_IGNORE_MISMATCHES": "Pass -ignore_mismatches to flow.tcl (tool version checks).",
    "MAX_SWEEP_POINTS": "Largest sweep accepted.",
    "APPROVAL_CORE_HOURS": "Submissions costing more core-hours wait for an admin.",
    "APPROVAL_ARRAY_SIZE": "Submissions with more tasks wait for an admin.",
    "GIT_ALLOW_FILE_URLS": "Allow file:// repository URLs (admin setting).",
    "GIT_ALLOWED_HOSTS": "If non-empty, only these Git hosts are accepted.",
    "GIT_ALLOWED_PRIVATE_HOSTS": "Hosts or addresses on private, loopback or link-local "
    "networks the portal may clone from anyway, e.g. the site's internal GitLab: host names, "
    "*.domain suffixes, addresses or networks (10.1.0.0/16). Every other repository host must "
    "resolve to public addresses only (checked at submit and before each clone). The demo and "
    "the tests list their own loopback git daemon here.",
    "GIT_CLONE_TIMEOUT": "Seconds before a clone is abandoned.",
    "GIT_MAX_REPO_MB": "Largest checkout accepted, in MiB.",
    "PREVIEW_FETCHES": "Repositories cloned at once for previews and dry runs (each user one "
    "at a time); more answer 'busy'.",
    "PREVIEW_WAIT_SECONDS": "How long a preview or dry-run request waits for its clone before "
    "it answers 'still fetching' (the ref itself is resolved with git ls-remote in at most "
    "3 s).",
    "PREVIEW_CACHE_SECONDS": "How long a preview's checkout is kept (by commit) after its last "
    "use.",
    "PREVIEW_CACHE_DIR": "Where previews' checkouts are kept; empty: a folder in the system's "
    "temporary directory.",
    "MAIL_SERVER": "SMTP host.",
    "MAIL_PORT": "SMTP port.",
    "MAIL_USE_TLS": "Use STARTTLS.",
    "MAIL_USE_SSL": "Use implicit TLS (SMTPS).",
    "MAIL_USERNAME": "SMTP user.",
    "MAIL_PASSWORD": "SMTP password (set it through the environment).",
    "MAIL_DEFAULT_SENDER": "From address.",
    "LAUNCH_IN_BACKGROUND": "Web and API submissions stage and sbatch in a background thread "
    "(the request answers at once); false runs them inside the request.",
    "SHARE_LINK_MAX_AGE": "Longest lifetime, in seconds, of a signed share link.",
    "PREVIEW_RATE_LIMIT": "sbatch previews per user (each one clones the repository).",
    "SUBMIT_RATE_LIMIT": "Submissions posted per user, from the form or the API.",
    "API_RATE_LIMIT": "API requests per token.",
    "METRICS_TOKEN": "If set, /metrics needs 'Authorization: Bearer <METRICS_TOKEN>'.",
    "TRUSTED_PROXIES": "Reverse proxies in front of the portal (nginx: 1) whose X-Forwarded-* "
    "headers are trusted; 0 trusts none.",
    "RATELIMIT_STORAGE_URI": "Flask-Limiter storage (memory:// per process; redis://... shared "
    "by all gunicorn workers).",
    "RATELIMIT_ENABLED": "Apply the rate limits below.",
    "LOGIN_RATE_LIMIT": "Login attempts per client address and login name.",
    "LOGIN_IP_RATE_LIMIT": "Login attempts per client address.",
    "LOGIN_LOCKOUT": "Failed logins per account (from any address) before it is locked out.",
    "PASSWORD_RESET_RATE_LIMIT": "Password reset requests per client address.",
    "REGISTER_RATE_LIMIT": "Registrations per client address.",
    "PASSWORD_RESET_MAX_AGE": "Lifetime of an emailed password reset link, in seconds.",
    "INVITE_MAX_AGE": "Lifetime of an invitation link, in seconds.",
    "REMEMBER_COOKIE_DURATION": "Lifetime of the 'remember me' cookie, in seconds.",
    "MAIL_MAX_TRIES": "Delivery attempts before a message is given up.",
    "MAIL_SEND_INTERVAL_SECONDS": "Seconds between mail sending cycles.",
    "MAIL_RETRY_BASE_SECONDS": "First retry delay; doubles after each failed try.",
    "MAIL_RETRY_MAX_SECONDS": "Upper limit of the retry delay.",
    "MAIL_TIMEOUT": "SMTP socket timeout in seconds.",
    "MAIL_LEASE_SECONDS": "Length of the lease that keeps one mail sender active.",
    "MAIL_TLS_CA_FILE": "CA bundle to check the SMTP server's certificate (system CAs if empty).",
    "REGISTRATION": "open | invite-only | admin-activated.",
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
