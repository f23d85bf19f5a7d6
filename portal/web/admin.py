"""Blueprint ``admin`` (``/admin``): the approval queue, users and invitations, cluster status,
configured images and the test email. Every view is for active admins only
(:func:`~portal.web.access.admin_required`: anonymous -> sign in, others -> 403).

Every change is audited (``portal.models.audit``) in the same commit as the change itself.
Approving starts the launch through :func:`portal.submit.background.start_launch` (background
thread by default), so the admin's request does not wait for a clone and sbatch.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased, selectinload

from portal import accounts
from portal.cluster.connect import slurm_client
from portal.cluster.overview import ClusterStatus, describe_flags, node_healthy, read_cluster_status
from portal.extensions import db
from portal.mail.outbox import MailError, enqueue_mail, send_test_email
from portal.models import Outbox, Role, Submission, SubmissionState, User, audit
from portal.slurm.client import DEFAULT_MAX_ARRAY_SIZE, SlurmError
from portal.slurm.transports import SlurmConfigError, TransportError, transport_kind
from portal.submit import SubmissionError, reject
from portal.web.access import admin_required
from portal.web.admin_forms import (
    ActionForm,
    InviteForm,
    RejectForm,
    RoleForm,
    TestEmailForm,
    UserAccountsForm,
)
from portal.web.admin_images import human_size, image_report
from portal.web.admin_queue import approve_and_launch, describe_sweep, preview_stored
from portal.web.auth import site_url
from portal.web.dashboard import submission_url

bp = Blueprint("admin", __name__, url_prefix="/admin")

USERS_PER_PAGE = 50
RECENT_DECISIONS = 10
#: Seconds one Slurm command of the cluster page may take (the page should not hang).
STATUS_TIMEOUT = 20.0
#: Seconds between refreshes of the cluster panel (htmx polling).
STATUS_REFRESH_SECONDS = 30
USER_FILTERS = {"": "All users", "inactive": "Inactive", "admins": "Admins"}


# --------------------------------------------------------------------------- shared bits


def _tab_counts() -> dict[str, int]:
    """Badges of the admin tabs: waiting submissions and inactive accounts."""
    waiting = db.session.scalar(
        select(func.count(Submission.id)).where(
            Submission.state == SubmissionState.AWAITING_APPROVAL
        )
    )
    inactive = db.session.scalar(select(func.count(User.id)).where(User.active.is_(False)))
    return {"waiting": waiting or 0, "inactive": inactive or 0}


def _render(template: str, code: int = 200, **context: Any) -> tuple[str, int]:
    return render_template(template, counts=_tab_counts(), **context), code


def _checked(form_class: type) -> Any:
    """Validate a posted action form; a missing or bad CSRF token was refused already."""
    form = form_class()
    if not form.validate_on_submit():
        return None
    return form


def _is_htmx() -> bool:
    return bool(request.headers.get("HX-Request"))


# --------------------------------------------------------------------------- approval queue


@bp.get("/")
@admin_required
def index() -> Any:
    """The approval queue: submissions waiting for an admin, oldest first."""
    waiting = db.session.scalars(
        select(Submission)
        .where(Submission.state == SubmissionState.AWAITING_APPROVAL)
        .options(selectinload(Submission.owner))
        .order_by(Submission.created_at, Submission.id)
    ).all()
    decider = aliased(User)
    recent = db.session.execute(
        select(Submission, decider.username)
        .join(decider, Submission.decided_by_id == decider.id)
        .options(selectinload(Submission.owner))
        .order_by(Submission.updated_at.desc(), Submission.id.desc())
        .limit(RECENT_DECISIONS)
    ).all()
    return _render(
        "admin/index.html",
        waiting=waiting,
        recent=recent,
        describe_sweep=describe_sweep,
        submission_url=submission_url,
        reject_form=RejectForm(formdata=None),
        thresholds={
            "core_hours": current_app.config["APPROVAL_CORE_HOURS"],
            "tasks": current_app.config["APPROVAL_ARRAY_SIZE"],
        },
    )


def _submission_or_404(uuid: str) -> Submission:
    submission = db.session.scalar(select(Submission).where(Submission.uuid == uuid))
    if submission is None:
        abort(404)
    return submission


def _max_array_size() -> int:
    try:
        return slurm_client(current_app.config).max_array_size()
    except (SlurmError, TransportError, SlurmConfigError) as exc:
        current_app.logger.warning("MaxArraySize unknown, preview assumes the default: %s", exc)
        return DEFAULT_MAX_ARRAY_SIZE


@bp.get("/submissions/<uuid>/script")
@admin_required
def script(uuid: str) -> Any:
    """The sbatch script a submission would run (read-only); an htmx fragment or a page."""
    submission = _submission_or_404(uuid)
    preview, error = None, None
    try:
        preview = preview_stored(submission, current_app.config, _max_array_size())
    except SubmissionError as exc:
        error = str(exc)
    context = {"submission": submission, "preview": preview, "preview_error": error}
    if _is_htmx():
        return render_template("admin/_script.html", **context)
    return _render("admin/script.html", submission_url=submission_url, **context)


@bp.post("/submissions/<uuid>/approve")
@admin_required
def approve(uuid: str) -> Any:
    """Approve a waiting submission: the decision email is queued and the launch starts."""
    submission = _submission_or_404(uuid)
    if _checked(ActionForm) is None:
        abort(400)
    try:
        approve_and_launch(current_app._get_current_object(), submission, current_user)
    except SubmissionError as exc:
        flash(f"“{submission.name}” was not approved: {exc}", "error")
        return redirect(url_for("admin.index"))
    db.session.refresh(submission)
    if submission.state == SubmissionState.SUBMIT_FAILED:
        flash(
            f"“{submission.name}” is approved, but it could not be submitted: {submission.error}",
            "warning",
        )
    elif submission.state == SubmissionState.STAGING:
        flash(
            f"Approved “{submission.name}” of {submission.owner.username}: its "
            f"{submission.n_tasks} tasks are being staged and submitted to Slurm now.",
            "success",
        )
    else:
        flash(
            f"Approved “{submission.name}” of {submission.owner.username}: it is "
            f"{submission.state} (job {', '.join(submission.job_ids) or '-'}).",
            "success",
        )
    return redirect(url_for("admin.index"))


@bp.post("/submissions/<uuid>/reject")
@admin_required
def reject_submission(uuid: str) -> Any:
    """Reject a waiting submission with a reason (emailed to the owner)."""
    submission = _submission_or_404(uuid)
    form = RejectForm()
    if not form.validate_on_submit():
        for error in form.reason.errors:
            flash(f"“{submission.name}” was not rejected: {error}", "error")
        return redirect(url_for("admin.index"))
    try:
        reject(submission, current_user, form.reason.data)
    except SubmissionError as exc:
        db.session.rollback()
        flash(f"“{submission.name}” was not rejected: {exc}", "error")
    else:
        flash(
            f"Rejected “{submission.name}” of {submission.owner.username}; "
            "the owner is told by email.",
            "success",
        )
    return redirect(url_for("admin.index"))


# --------------------------------------------------------------------------- users


def _users_query(q: str, status: str) -> Any:
    stmt = select(User)
    if q:
        pattern = f"%{q.lower()}%"
        stmt = stmt.where(
            or_(func.lower(User.username).like(pattern), func.lower(User.email).like(pattern))
        )
    if status == "inactive":
        stmt = stmt.where(User.active.is_(False))
    elif status == "admins":
        stmt = stmt.where(User.role == Role.ADMIN)
    return stmt


def _users_page(status_code: int = 200, **extra: Any) -> tuple[str, int]:
    q = " ".join(request.args.get("q", "").split())[:100]
    status = request.args.get("status", "")
    status = status if status in USER_FILTERS else ""
    page = request.args.get("page", "1")
    page_number = int(page) if page.isdigit() and int(page) > 0 else 1
    stmt = _users_query(q, status)
    total = db.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    pages = max(1, -(-total // USERS_PER_PAGE))
    page_number = min(page_number, pages)
    users = db.session.scalars(
        stmt.order_by(User.active, User.username)
        .offset((page_number - 1) * USERS_PER_PAGE)
        .limit(USERS_PER_PAGE)
    ).all()
    waiting_by_user = dict(
        db.session.execute(
            select(Submission.owner_id, func.count(Submission.id))
            .where(
                Submission.state == SubmissionState.AWAITING_APPROVAL,
                Submission.owner_id.in_([u.id for u in users]),
            )
            .group_by(Submission.owner_id)
        ).all()
    )
    extra.setdefault("invite_form", InviteForm(formdata=None))
    return _render(
        "admin/users.html",
        status_code,
        users=users,
        total=total,
        q=q,
        status=status,
        filters=USER_FILTERS,
        page=page_number,
        pages=pages,
        page_url=lambda number: url_for(
            "admin.users", **{k: v for k, v in (("q", q), ("status", status)) if v}, page=number
        ),
        waiting_by_user=waiting_by_user,
        registration=current_app.config["REGISTRATION"],
        invite_days=max(1, int(current_app.config["INVITE_MAX_AGE"]) // 86400),
        **extra,
    )


@bp.get("/users")
@admin_required
def users() -> Any:
    """Every account: role, active flag, Slurm account, Unix user; invitations."""
    return _users_page()


def _user_or_404(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


def _is_last_active_admin(user: User) -> bool:
    """True when ``user`` is the only active admin (rows locked where the database can)."""
    if not (user.is_admin and user.active):
        return False
    admins = db.session.scalars(
        select(User.id).where(User.role == Role.ADMIN, User.active.is_(True)).with_for_update()
    ).all()
    return len(admins) <= 1


def _back_to_users() -> Any:
    target = request.form.get("next", "")
    if target.startswith("/admin/users") and "//" not in target and "\\" not in target:
        return redirect(target)
    return redirect(url_for("admin.users"))


def _refuse_last_admin(user: User, what: str) -> Any:
    db.session.rollback()
    who = "you are" if user.id == current_user.id else f"{user.username} is"
    flash(
        f"Cannot {what} {user.username}: {who} the last active admin. "
        "Make another user an admin first.",
        "error",
    )
    return _back_to_users()


@bp.post("/users/<int:user_id>/activate")
@admin_required
def activate_user(user_id: int) -> Any:
    """Let an account sign in; its owner is told by email."""
    user = _user_or_404(user_id)
    if _checked(ActionForm) is None:
        abort(400)
    if user.active:
        flash(f"{user.username} is active already.", "info")
        return _back_to_users()
    user.active = True
    audit("user.activate", actor=current_user, user_id=user.id, username=user.username)
    enqueue_mail(
        user.email,
        "[OpenLane Portal] Your account is active",
        f"Hello {user.username},\n\nan administrator activated your OpenLane Portal account. "
        f"You can sign in now:\n\n{site_url('auth.login')}\n",
    )
    db.session.commit()
    flash(f"Activated {user.username}; they are told by email.", "success")
    return _back_to_users()


@bp.post("/users/<int:user_id>/deactivate")
@admin_required
def deactivate_user(user_id: int) -> Any:
    """Stop an account from signing in (its sessions and API tokens stop working)."""
    user = _user_or_404(user_id)
    if _checked(ActionForm) is None:
        abort(400)
    if not user.active:
        flash(f"{user.username} is inactive already.", "info")
        return _back_to_users()
    if _is_last_active_admin(user):
        return _refuse_last_admin(user, "deactivate")
    user.active = False
    accounts.end_sessions(user)  # its sessions stay ended if the account is activated again
    audit("user.deactivate", actor=current_user, user_id=user.id, username=user.username)
    db.session.commit()
    flash(f"Deactivated {user.username}.", "success")
    if user.id == current_user.id:
        return redirect(url_for("auth.login"))
    return _back_to_users()


@bp.post("/users/<int:user_id>/role")
@admin_required
def set_role(user_id: int) -> Any:
    """Make a user an admin or a plain user."""
    user = _user_or_404(user_id)
    form = _checked(RoleForm)
    if form is None:
        flash("Choose the role 'user' or 'admin'.", "error")
        return _back_to_users()
    new_role = form.role.data
    if new_role == user.role:
        flash(f"{user.username} is {new_role} already.", "info")
        return _back_to_users()
    if new_role != Role.ADMIN and _is_last_active_admin(user):
        return _refuse_last_admin(user, "demote")
    old_role, user.role = user.role, new_role
    audit(
        "user.role",
        actor=current_user,
        user_id=user.id,
        username=user.username,
        old=old_role,
        new=new_role,
    )
    db.session.commit()
    flash(f"{user.username} is now {'an admin' if user.is_admin else 'a user'}.", "success")
    if user.id == current_user.id and not user.is_admin:
        return redirect(url_for("account.profile"))
    return _back_to_users()


@bp.post("/users/<int:user_id>/accounts")
@admin_required
def set_accounts(user_id: int) -> Any:
    """Set (or clear) the Slurm account and the Unix user of an account."""
    user = _user_or_404(user_id)
    form = UserAccountsForm()
    if not form.validate_on_submit():
        for messages in form.errors.values():
            for message in messages:
                flash(f"{user.username}: {message}", "error")
        return _back_to_users()
    new = {
        "slurm_account": form.slurm_account.data or None,
        "unix_user": form.unix_user.data or None,
    }
    old = {"slurm_account": user.slurm_account, "unix_user": user.unix_user}
    if new == old:
        flash(f"Nothing changed for {user.username}.", "info")
        return _back_to_users()
    user.slurm_account, user.unix_user = new["slurm_account"], new["unix_user"]
    audit("user.accounts", actor=current_user, user_id=user.id, username=user.username, old=old,
          new=new)  # fmt: skip
    db.session.commit()
    flash(
        f"{user.username}: Slurm account {new['slurm_account'] or '(cluster default)'}, "
        f"Unix user {new['unix_user'] or '(none)'}.",
        "success",
    )
    return _back_to_users()


@bp.post("/invites")
@admin_required
def invite() -> Any:
    """Create an invitation link (optionally bound to, and emailed to, one address)."""
    form = InviteForm()
    if not form.validate_on_submit():
        return _users_page(400, invite_form=form)
    email = form.email.data or None
    token = accounts.make_invite_token(email)
    link = site_url("auth.register", invite=token)
    sent = bool(form.send.data and email)
    if sent:
        days = max(1, int(current_app.config["INVITE_MAX_AGE"]) // 86400)
        enqueue_mail(
            email,
            "[OpenLane Portal] You are invited",
            f"Hello,\n\n{current_user.username} invites you to the OpenLane Portal, where "
            "OpenLane sweeps run on the cluster as Slurm job arrays. Create your account "
            f"within {days} day{'s' if days != 1 else ''} with this link:\n\n{link}\n",
            dedupe_key="invite:" + hashlib.sha256(token.encode()).hexdigest()[:40],
        )
    audit("user.invite", actor=current_user, email=email, emailed=sent)
    db.session.commit()
    return _users_page(
        invite_link=link,
        invite_email=email,
        invite_sent=sent,
        invite_form=InviteForm(formdata=None),
    )


# --------------------------------------------------------------------------- cluster


def _cluster_status() -> tuple[ClusterStatus, str]:
    """The status and where it came from (``local`` or ``ssh user@host:port``)."""
    config = current_app.config
    try:
        kind = transport_kind(config)
        where = "this host (local commands)"
        if kind == "ssh":
            user = f"{config.get('SLURM_SSH_USER')}@" if config.get("SLURM_SSH_USER") else ""
            where = f"ssh {user}{config.get('SLURM_SSH_HOST')}:{config.get('SLURM_SSH_PORT')}"
        client = slurm_client(config)
    except SlurmConfigError as exc:
        return ClusterStatus(error=f"The Slurm settings are not usable: {exc}"), "-"
    client.timeout = min(client.timeout, STATUS_TIMEOUT)
    try:
        return read_cluster_status(client), where
    finally:
        close = getattr(client.transport, "close", None)
        if callable(close):
            close()


def _cluster_context() -> dict[str, Any]:
    status, where = _cluster_status()
    return {
        "status": status,
        "where": where,
        "node_healthy": node_healthy,
        "describe_flags": describe_flags,
        "refresh_seconds": STATUS_REFRESH_SECONDS,
    }


@bp.get("/cluster")
@admin_required
def cluster() -> Any:
    """Partitions, nodes and queue length from one sinfo and one squeue."""
    return _render("admin/cluster.html", **_cluster_context())


@bp.get("/cluster/panel")
@admin_required
def cluster_panel() -> Any:
    """The cluster panel alone (htmx polls it)."""
    return render_template("admin/_cluster_panel.html", **_cluster_context())


# --------------------------------------------------------------------------- images


@bp.get("/images")
@admin_required
def images() -> Any:
    """The configured flow images, PDK root and container runtime."""
    return _render(
        "admin/images.html", report=image_report(current_app.config), human_size=human_size
    )


# --------------------------------------------------------------------------- email


def _email_page(form: TestEmailForm, status: int = 200, **extra: Any) -> tuple[str, int]:
    config = current_app.config
    by_status: dict[str, int] = {
        status: count
        for status, count in db.session.execute(
            select(Outbox.status, func.count(Outbox.id)).group_by(Outbox.status)
        )
    }
    failed = db.session.scalars(
        select(Outbox)
        .where(or_(Outbox.status == "failed", Outbox.last_error.is_not(None)))
        .where(Outbox.status != "sent")
        .order_by(Outbox.created_at.desc())
        .limit(5)
    ).all()
    security = "SMTPS" if config.get("MAIL_USE_SSL") else "STARTTLS" if config.get(
        "MAIL_USE_TLS") else "none"  # fmt: skip
    settings = {
        "Server": f"{config.get('MAIL_SERVER')}:{config.get('MAIL_PORT')}",
        "Encryption": security,
        "Login": config.get("MAIL_USERNAME") or "(none)",
        "Password": "set" if config.get("MAIL_PASSWORD") else "not set",
        "From": config.get("MAIL_DEFAULT_SENDER"),
    }
    return _render(
        "admin/email.html",
        status,
        form=form,
        mail_settings=settings,
        outbox=by_status,
        problems=failed,
        **extra,
    )


@bp.route("/email", methods=["GET", "POST"])
@admin_required
def email() -> Any:
    """Send a test email now (not through the outbox) and show the SMTP server's answer."""
    form = TestEmailForm()
    if request.method == "GET":
        form.recipient.data = current_user.email
        return _email_page(form)
    if not form.validate_on_submit():
        return _email_page(form, 400)
    recipient = form.recipient.data
    try:
        send_test_email(recipient)
    except MailError as exc:
        audit("mail.test", actor=current_user, recipient=recipient, ok=False, error=str(exc))
        db.session.commit()
        return _email_page(form, mail_error=str(exc), recipient=recipient)
    audit("mail.test", actor=current_user, recipient=recipient, ok=True)
    db.session.commit()
    flash(f"Test email sent to {recipient}: the SMTP server accepted it.", "success")
    return redirect(url_for("admin.email"))
