"""WTForms for the account and workspace pages (areas with bigger forms keep their own)."""

from __future__ import annotations

from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import Email, EqualTo, InputRequired, Length, ValidationError

from .models import Role

_TIMEZONES = sorted(
    tz for tz in available_timezones() if "/" in tz and not tz.startswith(("Etc/", "SystemV/"))
) + ["UTC"]


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _lower_strip(value):
    return value.strip().lower() if isinstance(value, str) else value


def _new_password(label: str) -> PasswordField:
    """A password being chosen: the same rules at sign-up and on a change."""
    return PasswordField(
        label,
        validators=[
            InputRequired(),
            Length(min=10, max=200, message="Use at least 10 characters."),
        ],
    )


def _repeat_password(label: str) -> PasswordField:
    return PasswordField(
        label,
        validators=[InputRequired(), EqualTo("password", message="The passwords do not match.")],
    )


class SignupForm(FlaskForm):
    name = StringField("Your name", filters=[_strip], validators=[Length(max=120)])
    email = EmailField(
        "Email",
        filters=[_lower_strip],
        validators=[InputRequired(), Email(check_deliverability=False), Length(max=254)],
    )
    password = _new_password("Password")
    confirm = _repeat_password("Repeat password")


class LoginForm(FlaskForm):
    email = EmailField(
        "Email",
        filters=[_lower_strip],
        validators=[InputRequired(), Email(check_deliverability=False)],
    )
    password = PasswordField("Password", validators=[InputRequired()])
    remember = BooleanField("Keep me logged in")
    next = HiddenField()


class PasswordChangeForm(FlaskForm):
    current = PasswordField("Current password", validators=[InputRequired()])
    password = _new_password("New password")
    confirm = _repeat_password("Repeat new password")


class WorkspaceForm(FlaskForm):
    name = StringField(
        "Workspace name", filters=[_strip], validators=[InputRequired(), Length(min=2, max=120)]
    )
    timezone = SelectField("Time zone", choices=[(tz, tz) for tz in _TIMEZONES], default="UTC")


class InviteForm(FlaskForm):
    email = EmailField(
        "Email address",
        filters=[_lower_strip],
        validators=[InputRequired(), Email(check_deliverability=False)],
    )
    role = SelectField(
        "Role",
        choices=[(Role.MEMBER.value, "Member"), (Role.ADMIN.value, "Admin")],
        default=Role.MEMBER.value,
    )


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[(r.value, r.value.title()) for r in Role])

    def validate_role(self, field):
        if field.data not in {r.value for r in Role}:
            raise ValidationError("Unknown role.")
