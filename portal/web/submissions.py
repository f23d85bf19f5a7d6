"""Blueprint ``submissions``: the submit form, its live estimate and the sbatch preview.

``GET/POST /submissions/new`` shows and takes the form; ``?from=<uuid>`` opens it filled in as
a submission the user may see was asked for ("Edit and resubmit"). A valid request goes through
:func:`portal.submit.background.submit_request` (plan, record, launch) and the browser goes on to
the submission's page. A refused request re-renders the form with each problem at its field and
writes nothing; so is a request whose repository, ref or design folder is not found.

``POST /submissions/new/estimate`` and ``POST /submissions/new/preview`` answer htmx with a
fragment (points, cost, approval notice and readiness; the exact script). Without JavaScript
the same buttons post the whole form there and get the whole page back with the answer in it.

Partitions come from :func:`portal.cluster.overview.page_client` (a cached sinfo, a few seconds at
most): when the cluster does not answer, the form says so at once instead of waiting for it.
"""

from __future__ import annotations

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
from sqlalchemy import select

from portal.cluster.overview import page_client
from portal.extensions import db
from portal.flows.types import FlowError
from portal.models import Submission
from portal.slurm.client import SlurmClient, SlurmError
from portal.slurm.transports import TransportError
from portal.submit import (
    SubmissionError,
    SubmissionRequest,
    background,
    plan_submission,
    preview_script,
)
from portal.submit.catalog import load_catalog
from portal.submit.previews import PreviewPending
from portal.submit.sbatch import RenderError
from portal.submit.sweeps import SweepError
from portal.web import limiter
from portal.web.access import require_view
from portal.web.dashboard import submission_url
from portal.web.submit_forms import (
    MAX_SWEEP_ROWS,
    PARAM_PREFIX,
    STAGE_TITLES,
    SWEEP_MODES,
    Estimate,
    FormInvalid,
    PartitionChoices,
    Prefill,
    SubmitForm,
    build_request,
    estimate,
    parameter_groups,
    partition_choices,
    prefill,
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
    """A page's client, for reading partitions and limits: short timeouts and a cached sinfo
    (submitting runs as the owner through :func:`portal.submit.background.submit_request`)."""
    try:
        return page_client(current_app.config)
    except ValueError:  # a transport that cannot even be built: settings are wrong
        current_app.logger.exception("cannot build the Slurm client")
        return None


def _form(
    slurm: SlurmClient | None, copy: Prefill | None = None
) -> tuple[SubmitForm, PartitionChoices]:
    """The form bound to the request (if posted) or filled in from ``copy``, with the
    cluster's partitions as choices."""
    partitions = partition_choices(current_app.config, slurm)
    form = SubmitForm(data=copy.data if copy else None)
    form.partition.choices = partitions.choices
    offered = {choice.value for choice in partitions.choices}
    if not form.is_submitted() and form.partition.data not in offered - {""}:
        form.partition.data = partitions.default
    return form, partitions


def _copied() -> Submission | None:
    """The submission ``?from=<uuid>`` names (404 unless the user may see it), or None."""
    uuid = request.args.get("from")
    if not uuid:
        return None
    return require_view(db.session.scalar(select(Submission).where(Submission.uuid == uuid)))


def _wait_s() -> float:
    return float(current_app.config.get("PREVIEW_WAIT_SECONDS", 2))


def _review(
    form: SubmitForm, slurm: SlurmClient | None
) -> tuple[SubmissionRequest | None, Estimate]:
    """Validate, translate and check the posted form, its repository included; every
    problem is put on the form at its field. The request is None when it cannot be built."""
    form.validate()
    account = current_user.slurm_account
    built: SubmissionRequest | None = None
    try:
        checked = built = build_request(form.data, raw_params(request.form), account=account)
    except FormInvalid as exc:  # the other fields are still checked, without the sweep
        form.add_errors(exc.errors)
        bare = {**form.data, "sweep": [], "sweep_mode": "grid"}
        checked = build_request(bare, {}, account=account)
    owner = current_user._get_current_object()  # type: ignore[attr-defined]
    result = estimate(
        checked,
        current_app.config,
        slurm,
        owner,
        errors=form.all_errors(),
        wait_s=_wait_s(),
        partial=built is None,
    )
    form.add_errors(result.errors)
    return built, result


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
    copy_of: Submission | None = None,
    copy: Prefill | None = None,
) -> tuple[str, int]:
    catalog = load_catalog()
    copied = copy.params if copy else {}
    param_values = raw_params(request.form) if form.is_submitted() else copied
    page = render_template(
        "submissions/new.html",
        form=form,
        partitions=partitions,
        groups=parameter_groups(catalog),
        stage_titles=STAGE_TITLES,
        catalog_names=catalog.names(),
        catalog=catalog,
        param_values=param_values,
        copy_of=copy_of,
        copy=copy,
        show_errors=form.is_submitted() or copy is not None,
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
    """The submit form (``?from=<uuid>``: filled in as that submission was); a valid post
    whose repository, ref and design folder are found creates the submission and opens its
    page (a repository still being fetched is checked by the launch)."""
    slurm = _slurm()
    copy_of = None if request.method == "POST" else _copied()
    copy = prefill(copy_of) if copy_of is not None else None
    form, partitions = _form(slurm, copy)
    if not form.is_submitted():
        return _page(form, partitions, copy_of=copy_of, copy=copy)
    built, _ = _review(form, slurm)
    if built is None or form.all_errors():
        return _page(form, partitions, 400)
    if partitions.error is not None:
        form.add_errors(
            {
                "form": [
                    f"The cluster does not answer right now ({partitions.error}); nothing was "
                    "submitted. Try again in a minute."
                ]
            }
        )
        return _page(form, partitions, 503)
    try:
        submission = background.submit_request(
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
    _, result = _review(form, slurm)
    if not _is_htmx():
        return _page(form, partitions, estimate_result=result)
    return render_template("submissions/_estimate.html", estimate=result, form=form)


def _messages(form: SubmitForm) -> list[str]:
    """Every problem of the form as one line each, labelled with its field."""
    lines = []
    for key, errors in form.all_errors().items():
        if key == "form" or key.startswith(PARAM_PREFIX):  # a parameter's message names it
            lines.extend(errors)
        else:
            label = form.label_for(key)[0]
            lines.extend(f"{label}: {error}" for error in errors)
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
