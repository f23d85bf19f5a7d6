"""Blueprint ``submissions``: the submit form, its live estimate and the sbatch preview.

``GET/POST /submissions/new`` shows and takes the form; a valid request goes through
:func:`portal.launcher.submit_request` (plan, record, launch) and the browser goes on to the
submission's page. A refused request re-renders the form with the message and writes nothing.

``POST /submissions/new/estimate`` and ``POST /submissions/new/preview`` answer htmx with a
fragment (points, cost and approval notice; the exact script). Without JavaScript the same
buttons post the whole form there and get the whole page back with the answer in it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
)
from flask_limiter.util import get_remote_address
from flask_login import current_user, login_required

from portal import launcher
from portal.catalog import load_catalog
from portal.cluster import slurm_client
from portal.flows.base import FlowError
from portal.previews import PreviewPending
from portal.render import RenderError
from portal.slurm.client import SlurmClient, SlurmError
from portal.slurm.transports import TransportError
from portal.submissions import SubmissionError, plan_submission, preview_script
from portal.sweeps import SweepError
from portal.web import limiter
from portal.web.dashboard import submission_url
from portal.web.submit_forms import (
    MAX_SWEEP_ROWS,
    PARAM_PREFIX,
    STAGE_TITLES,
    SWEEP_MODES,
    Estimate,
    FormInvalid,
    PartitionChoices,
    SubmitForm,
    build_request,
    estimate,
    parameter_groups,
    partition_choices,
    raw_params,
)

bp = Blueprint("submissions", __name__, url_prefix="/submissions")

#: Defaults of the two rate limits (settings SUBMIT_RATE_LIMIT and PREVIEW_RATE_LIMIT override
#: them): a preview clones the repository, a submission queues work on the cluster.
SUBMIT_RATE_LIMIT = "30 per minute"
PREVIEW_RATE_LIMIT = "10 per minute"


def _per_user() -> str:
    if current_user.is_authenticated:
        return f"user:{current_user.id}"
    return get_remote_address()


def _slurm() -> SlurmClient | None:
    """The service's client, for reading partitions and limits (submitting runs as the owner
    through :func:`portal.launcher.submit_request`)."""
    try:
        return slurm_client(current_app.config)
    except ValueError:  # a transport that cannot even be built: settings are wrong
        current_app.logger.exception("cannot build the Slurm client")
        return None


def _form(slurm: SlurmClient | None) -> tuple[SubmitForm, PartitionChoices]:
    """The form bound to the request (if posted), with the cluster's partitions as choices."""
    partitions = partition_choices(current_app.config, slurm)
    form = SubmitForm()
    form.partition.choices = partitions.choices
    if not form.is_submitted():
        form.partition.data = partitions.default
    return form, partitions


def _read(form: SubmitForm) -> Any:
    """Validate the form and translate it; None (errors are on the form) when it is invalid."""
    valid = form.validate()
    try:
        built = build_request(
            form.data, raw_params(request.form), account=current_user.slurm_account
        )
    except FormInvalid as exc:
        form.add_errors(exc.errors)
        return None
    return built if valid else None


def _page(
    form: SubmitForm,
    partitions: PartitionChoices,
    status: int = 200,
    *,
    estimate_result: Estimate | None = None,
    preview: str | None = None,
    preview_error: str | None = None,
    pending: str | None = None,
) -> tuple[str, int]:
    catalog = load_catalog()
    page = render_template(
        "submissions/new.html",
        form=form,
        partitions=partitions,
        groups=parameter_groups(catalog),
        stage_titles=STAGE_TITLES,
        catalog_names=catalog.names(),
        catalog=catalog,
        param_values=raw_params(request.form) if form.is_submitted() else {},
        param_prefix=PARAM_PREFIX,
        sweep_modes=SWEEP_MODES,
        max_rows=MAX_SWEEP_ROWS,
        estimate=estimate_result,
        preview=preview,
        preview_error=preview_error,
        preview_pending=pending,
        account=current_user.slurm_account or current_app.config.get("SLURM_DEFAULT_ACCOUNT"),
    )
    return page, status


def _is_htmx() -> bool:
    return request.headers.get("HX-Request") == "true"


@bp.route("/new", methods=["GET", "POST"])
@limiter.limit(
    lambda: str(current_app.config.get("SUBMIT_RATE_LIMIT") or SUBMIT_RATE_LIMIT),
    key_func=_per_user,
    methods=["POST"],
)
@login_required
def new() -> Any:
    """The submit form; a valid post creates the submission and opens its page."""
    slurm = _slurm()
    form, partitions = _form(slurm)
    if not form.is_submitted():
        return _page(form, partitions)
    built = _read(form)
    if built is None:
        return _page(form, partitions, 400)
    try:
        submission = launcher.submit_request(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            built,
            current_user._get_current_object(),  # type: ignore[attr-defined]
        )
    except SubmissionError as exc:
        form.add_errors({"form": [str(exc)]})
        return _page(form, partitions, 400)
    except (SlurmError, TransportError) as exc:
        form.add_errors({"form": [f"Slurm does not answer ({exc}); nothing was submitted."]})
        return _page(form, partitions, 503)
    if submission.state == "AWAITING_APPROVAL":
        flash(
            f"“{submission.name}” was recorded and waits for an admin's approval "
            f"({submission.decision_reason}).",
            "warning",
        )
    elif submission.state == "SUBMIT_FAILED":
        flash(f"“{submission.name}” could not be submitted: {submission.error}", "error")
    else:
        flash(f"“{submission.name}” was submitted: {submission.n_tasks} task(s).", "success")
    return redirect(submission_url(submission.uuid))


@bp.post("/new/estimate")
@login_required
def estimate_view() -> Any:
    """Points, core-hours and the approval notice for the form as it is (htmx fragment)."""
    slurm = _slurm()
    form, partitions = _form(slurm)
    result = _estimate(form, slurm)
    if not _is_htmx():
        return _page(form, partitions, estimate_result=result)
    return render_template("submissions/_estimate.html", estimate=result)


def _estimate(form: SubmitForm, slurm: SlurmClient | None) -> Estimate:
    valid = form.validate()
    try:
        built = build_request(
            form.data, raw_params(request.form), account=current_user.slurm_account
        )
    except FormInvalid as exc:
        form.add_errors(exc.errors)
        return Estimate(errors=tuple(_messages(form)))
    owner = current_user._get_current_object()  # type: ignore[attr-defined]
    result = estimate(built, current_app.config, slurm, owner)
    if not valid:
        return dataclasses.replace(result, errors=(*_messages(form), *result.errors))
    return result


def _messages(form: SubmitForm) -> list[str]:
    """Every problem of the form as one line each, labelled with its field."""
    lines = list(form.general_errors)
    for name, errors in form.errors.items():
        if name == "sweep" or not errors:
            continue
        label = getattr(form, name).label.text if hasattr(form, name) else name
        lines.extend(f"{label}: {error}" for error in errors if isinstance(error, str))
    for key, errors in form.extra_errors.items():
        if key == "form":
            continue
        if key.startswith(PARAM_PREFIX):
            lines.extend(errors)
        elif key.startswith("sweep-"):
            row = int(key.split("-", 1)[1]) + 1
            lines.extend(f"Sweep row {row}: {error}" for error in errors)
        else:
            lines.extend(f"Sweep: {error}" for error in errors)
    return lines


@bp.post("/new/preview")
@limiter.limit(
    lambda: str(current_app.config.get("PREVIEW_RATE_LIMIT") or PREVIEW_RATE_LIMIT),
    key_func=_per_user,
)
@login_required
def preview() -> Any:
    """The exact sbatch script(s) the form would submit (a throwaway clone; nothing kept)."""
    slurm = _slurm()
    form, partitions = _form(slurm)
    script, error, pending = None, None, None
    built = _read(form)
    if built is None:
        error = "; ".join(_messages(form)) or "the form has errors"
    else:
        try:
            owner = current_user._get_current_object()  # type: ignore[attr-defined]
            plan = plan_submission(built, current_app.config, slurm, owner=owner)
            wait_s = float(current_app.config.get("PREVIEW_WAIT_SECONDS", 2))
            script = preview_script(plan, current_app.config, owner, wait_s=wait_s)
        except PreviewPending as exc:  # the clone goes on off this thread; htmx asks again
            pending = str(exc)
        except (SubmissionError, SweepError, RenderError, FlowError) as exc:
            error = str(exc)
    if not _is_htmx():
        return _page(form, partitions, preview=script, preview_error=error, pending=pending)
    return render_template(
        "submissions/_preview.html", preview=script, preview_error=error, preview_pending=pending
    )
