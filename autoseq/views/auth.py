"""Sign up, log in, log out."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..forms import LoginForm, SignupForm
from ..models import User
from ..services import accounts
from .helpers import is_safe_next, redirect_next

bp = Blueprint("auth", __name__)


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    """Create an account, log it in, and send it to create its first workspace."""
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
                flash("Welcome to AutoSeq. Create your first workspace.", "success")
                return redirect(url_for("workspaces.workspace_new"))
    return render_template("auth/signup.html", form=form), 200 if not form.errors else 422


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Log in, with a plain limit on failed attempts per email and address."""
    if current_user.is_authenticated:
        return redirect_next(url_for("workspaces.home"))
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        limiter = accounts.LoginLimiter(
            current_app.extensions["redis"],
            limit=current_app.config["LOGIN_FAILURE_LIMIT"],
            window=current_app.config["LOGIN_FAILURE_WINDOW"],
        )
        key = f"{form.email.data}|{request.remote_addr}"
        wait = limiter.blocked_for(key)
        if wait:
            minutes = max(1, round(wait / 60))
            form.password.errors.append(
                f"Too many failed attempts. Try again in {minutes} minute"
                + ("s." if minutes > 1 else ".")
            )
            return render_template("auth/login.html", form=form), 429
        user = db.session.scalar(db.select(User).filter_by(email=form.email.data))
        if user is None or not user.check_password(form.password.data):
            limiter.fail(key)
            form.password.errors.append("That email and password do not match an account.")
            return render_template("auth/login.html", form=form), 422
        limiter.clear(key)
        login_user(user, remember=form.remember.data)
        target = form.next.data
        return redirect(target if is_safe_next(target) else url_for("workspaces.home"))
    return render_template("auth/login.html", form=form), 200 if not form.errors else 422


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))
