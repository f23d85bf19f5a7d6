"""The web layer: blueprints, login, CSRF, rate limits, security headers and error pages.

:func:`init_web` wires everything onto the app. Browser sessions use Flask-Login cookies;
API clients send ``Authorization: Bearer <token>`` (a personal API token) and are then
authenticated by that token alone: their session cookie is ignored, CSRF does not apply
(a browser cannot forge that header cross-site) and no cookie is set in the answer.
"""

from __future__ import annotations

import importlib.metadata
import logging
from typing import Any

from flask import (
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from portal.accounts import api_token_for, user_for_session_id
from portal.extensions import db
from portal.flows.registry import site_notes, standin_name
from portal.logmask import install_filter
from portal.models import User
from portal.web.access import install_login_protocol, is_admin

limiter = Limiter(key_func=get_remote_address, headers_enabled=True)
csrf = CSRFProtect()
login_manager = LoginManager()

#: Main navigation: (label, endpoint, admins only). Entries whose endpoint is not registered
#: (yet) are not shown.
NAV_ITEMS: list[tuple[str, str, bool]] = [
    ("Dashboard", "dashboard.index", False),
    ("New submission", "submissions.new", False),
    ("Admin", "admin.index", True),
]
#: Where "home" is, first registered wins.
HOME_ENDPOINTS = ("dashboard.index", "account.profile")

REGISTRATION_MODES = ("open", "invite-only", "admin-activated")

DEFAULT_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)

#: Web-only defaults not in portal.config (the rate limits etc. live there).
WEB_DEFAULTS: dict[str, Any] = {"CONTENT_SECURITY_POLICY": DEFAULT_CSP}


def portal_version() -> str:
    """The installed portal version (shown in the page footer)."""
    try:
        return importlib.metadata.version("openlane-portal")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def bearer_token() -> str | None:
    """The token of an ``Authorization: Bearer`` header on the current request, if any."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip()


def wants_json() -> bool:
    """True for API clients: bearer auth, /api/ paths, JSON bodies or JSON-first Accept."""
    if bearer_token() is not None or request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def home_url() -> str:
    """URL of the signed-in start page (the dashboard once it exists)."""
    for endpoint in HOME_ENDPOINTS:
        if endpoint in current_app.view_functions:
            return url_for(endpoint)
    return "/"


# --------------------------------------------------------------------------- authentication


def _token_user() -> User | None:
    """The user of the request's bearer token, looked up once per request."""
    plaintext = bearer_token()
    if plaintext is None:
        return None
    if "api_token" not in g:
        g.api_token = api_token_for(plaintext)
    return g.api_token.user if g.api_token is not None else None


def _load_session_user(session_id: str) -> User | None:
    if bearer_token() is not None:  # API requests are authenticated by their token only
        return _token_user()
    # refused once the account's sessions were ended (sign-out, password, deactivation)
    return user_for_session_id(session_id)


def _unauthorized() -> Any:
    if wants_json():
        response = jsonify(error={"code": "unauthorized", "message": "Authentication required."})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="openlane-portal"'
        return response
    login = url_for("auth.login", next=request.full_path.rstrip("?"))
    if request.headers.get("HX-Request"):
        return Response(status=401, headers={"HX-Redirect": login})
    return redirect(login)


class _SessionInterface(SecureCookieSessionInterface):
    """Never set a session cookie in answers to bearer-token requests."""

    def should_set_cookie(self, app: Flask, session: Any) -> bool:
        if bearer_token() is not None:
            return False
        return super().should_set_cookie(app, session)


def _init_login(app: Flask) -> None:
    install_login_protocol(User)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "basic"
    login_manager.user_loader(_load_session_user)
    login_manager.request_loader(lambda _request: _token_user())
    login_manager.unauthorized_handler(_unauthorized)
    app.session_interface = _SessionInterface()


def _init_csrf(app: Flask) -> None:
    # Flask-WTF's own hook is replaced by one that skips bearer-token requests.
    check_default = app.config.get("WTF_CSRF_CHECK_DEFAULT", True)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)

    @app.before_request
    def csrf_unless_bearer() -> None:
        if not check_default or not app.config.get("WTF_CSRF_ENABLED", True):
            return
        if bearer_token() is not None:
            return
        csrf.protect(apply_exemptions=True)


# --------------------------------------------------------------------------- page furniture


def _security_headers(app: Flask) -> None:
    https = str(app.config.get("SITE_URL", "")).startswith("https://")

    @app.after_request
    def add_headers(response: Response) -> Response:
        headers = response.headers
        headers.setdefault("Content-Security-Policy", app.config["CONTENT_SECURITY_POLICY"])
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if https:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if request.endpoint != "static" and "Cache-Control" not in headers:
            headers["Cache-Control"] = "no-store"  # pages carry personal data and tokens
        return response


def error_response(exc: HTTPException) -> Any:
    """Render ``exc`` as JSON for API clients (``{"error": {"code", "message"}}``, the REST
    API's shape), else as the portal's error page."""
    code = exc.code or 500
    if code >= 500:
        db.session.rollback()
    if wants_json():
        code_name = exc.name.lower().replace(" ", "_")
        response = jsonify(error={"code": code_name, "message": exc.description})
        response.status_code = code
    else:
        response = Response(
            render_template("errors/error.html", code=code, name=exc.name, exc=exc), code
        )
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _error_pages(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if exc.code is None or exc.code < 400:
            return exc
        return error_response(exc)


def _layout_context(app: Flask) -> None:
    version = portal_version()

    @app.context_processor
    def layout() -> dict[str, Any]:
        admin = is_admin(current_user)
        nav = [
            {
                "label": label,
                "url": url_for(endpoint),
                "active": request.blueprint == endpoint.partition(".")[0],
            }
            for label, endpoint, admin_only in NAV_ITEMS
            if endpoint in app.view_functions and (admin or not admin_only)
        ]
        return {
            "portal_version": version,
            "nav_items": nav if current_user.is_authenticated else [],
            "current_is_admin": admin,
            "home_url": home_url(),
            "registration_mode": app.config["REGISTRATION"],
            "standin_flow": standin_name(app.config),
            "site_flow_notes": site_notes(app.config),
        }


def _register_blueprints(app: Flask) -> None:
    """Every blueprint of the web layer, by explicit import (each sets its own url_prefix).
    Imported here, not at the top: their modules use this package's ``limiter`` and helpers."""
    from portal.web import (
        account,
        admin,
        api,
        auth,
        dashboard,
        detail,
        files,
        prometheus,
        submissions,
    )

    for module in (auth, account, dashboard, submissions, admin, api, detail, files, prometheus):
        app.register_blueprint(module.bp)


class BoundedInt(IntegerConverter):
    """``<int:...>`` path segments up to 2**31 - 1 (every id and task index fits): a larger
    number is a 404 like any unknown id, not an overflow in the database driver."""

    def __init__(self, url_map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(url_map, *args, **kwargs)


def init_web(app: Flask) -> None:
    """Register the web layer on ``app``."""
    for key, value in WEB_DEFAULTS.items():
        app.config.setdefault(key, value)
    if app.config["REGISTRATION"] not in REGISTRATION_MODES:
        raise ValueError(
            f"REGISTRATION must be one of {', '.join(REGISTRATION_MODES)}, "
            f"not {app.config['REGISTRATION']!r}"
        )
    https = str(app.config.get("SITE_URL", "")).startswith("https://")
    for prefix in ("SESSION", "REMEMBER"):  # Flask presets SESSION_* (SameSite unset)
        app.config[f"{prefix}_COOKIE_SAMESITE"] = (
            app.config.get(f"{prefix}_COOKIE_SAMESITE") or "Lax"
        )
        app.config.setdefault(f"{prefix}_COOKIE_HTTPONLY", True)
        app.config[f"{prefix}_COOKIE_SECURE"] = bool(
            app.config.get(f"{prefix}_COOKIE_SECURE") or https
        )

    if int(app.config.get("TRUSTED_PROXIES") or 0) > 0:
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_prefix=hops
        )
    _init_login(app)
    limiter.init_app(app)
    _init_csrf(app)
    _security_headers(app)
    _error_pages(app)
    _layout_context(app)
    app.url_map.converters["int"] = BoundedInt  # before any rule is added
    _register_blueprints(app)
    # "Exception on /shared/<token> [GET]" and the dev server's request lines: tokens masked
    # (gunicorn's access log: portal.gunicorn_conf)
    install_filter(app.logger)
    install_filter(logging.getLogger("werkzeug"))

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}
