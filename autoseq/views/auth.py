"""Sign up, log in, log out, the account page, and email verification."""

from __future__ import annotations

import hashlib
import logging
import secrets

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
from flask_login import current_user, login_required, login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..forms import LoginForm, PasswordChangeForm, SignupForm
from ..models import User
from ..services import accounts
from .helpers import is_safe_next, redirect_next

log = logging.getLogger(__name__)
bp = Blueprint("auth", __name__)

DEVICE_COOKIE = "autoseq_device"
DEVICE_MAX_AGE = 365 * 24 * 3600
VERIFY_MAX_AGE = 3 * 24 * 3600


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    """Create an account, log it in, send it a verification link, and on to its first workspace."""
    if current_user.is_authenticated:
        return redirect(url_for("workspaces.home"))
    form = SignupForm()
    if form.validate_on_submit():
        if db.session.scalar(db.select(User).filter_by(email=form.email.data)):
            form.email.errors.append("An account with this email exists. Log in instead.")
        else:
            try:
                user = accounts.create_user(form.email.data, form.password.data, form.name.data)
            except IntegrityError:
                db.session.rollback()
                form.email.errors.append("An account with this email exists. Log in instead.")
            else:
                login_user(user)
                send_verification(user)
                flash("Welcome to AutoSeq. Create your first workspace.", "success")
                return redirect(url_for("workspaces.workspace_new"))
    return render_template("auth/signup.html", form=form), 200 if not form.errors else 422


def _email_digest(email: str) -> str:
    # The device cookie names the account by a digest: its payload is signed, not encrypted.
    return hashlib.sha256(email.encode()).hexdigest()[:24]


def _device_id(email: str) -> str | None:
    """The id in this browser's trusted-device cookie when it is for ``email`` (else None)."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        data = _serializer("login-device").loads(raw, max_age=DEVICE_MAX_AGE)
    except BadSignature:
        return None
    if (
        not isinstance(data, dict)
        or data.get("e") != _email_digest(email)
        or not isinstance(data.get("n"), str)
    ):
        return None
    return data["n"]


def _try_later(form):
    form.password.errors.append("AutoSeq cannot check logins right now. Try again shortly.")
    response = current_app.make_response((render_template("auth/login.html", form=form), 503))
    response.headers["Retry-After"] = "10"
    return response


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log in. Attempts are limited per address and per account (see ``LoginLimiter``)."""
    if current_user.is_authenticated:
        return redirect_next(url_for("workspaces.home"))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        config = current_app.config
        limiter = accounts.LoginLimiter(
            current_app.extensions["redis"],
            account_limit=config["LOGIN_FAILURE_LIMIT"],
            address_limit=config["LOGIN_ADDRESS_LIMIT"],
            window=config["LOGIN_FAILURE_WINDOW"],
            slow_interval=config["LOGIN_SLOW_INTERVAL"],
        )
        email = form.email.data
        device = _device_id(email)
        try:
            wait = limiter.admit(request.remote_addr or "", email, device)
        except RedisError as exc:
            log.error("login limiter unavailable: %s", exc)
            return _try_later(form)
        if wait:
            unit = "second" if wait < 120 else "minute"
            amount = wait if wait < 120 else round(wait / 60)
            form.password.errors.append(
                f"Too many attempts. Try again in {amount} {unit}" + ("s." if amount > 1 else ".")
            )
            response = current_app.make_response(
                (render_template("auth/login.html", form=form), 429)
            )
            response.headers["Retry-After"] = str(wait)
            return response
        user = accounts.check_login(email, form.password.data)
        if user is None:
            form.password.errors.append("That email and password do not match an account.")
            return render_template("auth/login.html", form=form), 422
        try:
            limiter.succeeded(email, device)
        except RedisError as exc:
            log.warning("login limiter not reset for a successful login: %s", exc)
        login_user(user, remember=form.remember.data)
        target = form.next.data
        response = redirect(target if is_safe_next(target) else url_for("workspaces.home"))
        # This browser now counts as a device of the account: an attack on the account slows
        # other browsers down, not this one.
        cookie = _serializer("login-device").dumps(
            {"e": _email_digest(email), "n": secrets.token_urlsafe(12)}
        )
        response.set_cookie(
            DEVICE_COOKIE,
            cookie,
            max_age=DEVICE_MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=config["SESSION_COOKIE_SECURE"],
        )
        return response
    return render_template("auth/login.html", form=form), 200 if not form.errors else 422


@bp.route("/logout", methods=["POST"])
def logout():
    """End the session: the user's session token changes, so no copy of the cookie works again."""
    if current_user.is_authenticated:
        current_user.end_sessions()
        db.session.commit()
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account_show():
    """The account page: change the password (ends other sessions), sign out everywhere."""
    form = PasswordChangeForm()
    if form.validate_on_submit():
        if not current_user.check_password(form.current.data):
            form.current.errors.append("That is not your current password.")
        else:
            current_user.set_password(form.password.data)
            db.session.commit()
            # This browser stays signed in, under the new session token.
            login_user(current_user._get_current_object())
            flash("Password changed. Every other session is signed out.", "success")
            return redirect(url_for(".account_show"))
    return render_template("auth/account.html", form=form), 200 if not form.errors else 422


@bp.route("/account/sign-out-everywhere", methods=["POST"])
@login_required
def account_sign_out_everywhere():
    current_user.end_sessions()
    db.session.commit()
    logout_user()
    flash("You are signed out on every device.", "info")
    return redirect(url_for("auth.login"))


def verification_token(user: User) -> str:
    return _serializer("verify-email").dumps({"u": user.id, "e": user.email})


def send_verification(user: User, next_url: str | None = None) -> None:
    """Mail ``user`` a link that proves they read mail at their address."""
    from .. import mail

    link = current_app.config["PUBLIC_BASE_URL"] + url_for(
        "auth.email_verify",
        token=verification_token(user),
        next=next_url if is_safe_next(next_url) else None,
    )
    try:
        mail.send(
            user.email,
            "Confirm your AutoSeq email address",
            f"Open this link to confirm {user.email} (valid for 3 days):\n\n{link}\n",
        )
    except (OSError, RedisError) as exc:
        log.error("verification mail to user %s not sent: %s", user.id, exc)
        flash("We could not send the confirmation mail. Try again from your account page.", "error")


@bp.post("/account/verify")
@login_required
def email_verify_send():
    if current_user.email_verified:
        flash("Your email address is already confirmed.", "info")
    else:
        send_verification(current_user, request.args.get("next"))
        flash(f"We sent a confirmation link to {current_user.email}.", "info")
    return redirect_next(url_for(".account_show"))


@bp.get("/verify/<token>")
@login_required
def email_verify(token: str):
    """Confirm the signed-in user's address from a verification link."""
    try:
        data = _serializer("verify-email").loads(token, max_age=VERIFY_MAX_AGE)
    except BadSignature:
        abort(400, "This confirmation link is invalid or has expired. Ask for a new one.")
    if not isinstance(data, dict) or data.get("u") != current_user.id:
        abort(400, "This confirmation link is for another account.")
    if data.get("e") != current_user.email:
        abort(400, "This confirmation link is for another address.")
    if not current_user.email_verified:
        from ..models.base import utcnow

        current_user.email_verified_at = utcnow()
        db.session.commit()
    flash("Your email address is confirmed.", "success")
    return redirect_next(url_for(".account_show"))


@bp.get("/dev/mail")
def dev_outbox():
    """The development outbox: mail that had no SMTP server to go to (never in production)."""
    if current_app.config["AUTOSEQ_ENV"] == "production":
        abort(404)
    from .. import mail

    return render_template("auth/outbox.html", messages=mail.outbox())
