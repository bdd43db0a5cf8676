"""WTForms of the Mailboxes & Rotations area."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    EmailField,
    FieldList,
    Form,
    FormField,
    IntegerField,
    SelectField,
    StringField,
)
from wtforms.validators import (
    DataRequired,
    Email,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from .models import DEFAULT_DAILY_CAP, MailboxKind, MailboxStatus, ResetPeriod, RotationMode

CAP_MESSAGE = "The daily cap must be between 1 and 1,000 (HubSpot's maximum)."


def _lower_strip(value):
    return value.strip().lower() if isinstance(value, str) else value


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _optional_int(value):
    if value in (None, ""):
        return None
    return int(value)


def _cap_field():
    return IntegerField(
        "Daily cap",
        default=DEFAULT_DAILY_CAP,
        validators=[
            InputRequired(message=CAP_MESSAGE),
            NumberRange(min=1, max=1000, message=CAP_MESSAGE),
        ],
    )


class MailboxAddForm(FlaskForm):
    """Add an inbox address or a sender alias for a HubSpot user."""

    hubspot_user_id = SelectField("HubSpot user", coerce=_optional_int, validate_choice=True)
    email = EmailField(
        "Address",
        filters=[_lower_strip],
        validators=[
            InputRequired(),
            Email(check_deliverability=False, message="Enter an email address."),
            Length(max=254),
        ],
    )
    kind = SelectField(
        "Kind",
        choices=[(MailboxKind.INBOX.value, "Inbox"), (MailboxKind.ALIAS.value, "Sender alias")],
        default=MailboxKind.INBOX.value,
    )
    inbox_email = EmailField(
        "Sends through (for an alias)",
        filters=[_lower_strip],
        validators=[
            Optional(),
            Email(check_deliverability=False, message="Enter an email address."),
        ],
    )
    daily_cap = _cap_field()

    def validate_hubspot_user_id(self, field):
        if field.data is None:
            raise ValidationError("Pick a HubSpot user.")


class MailboxEditForm(FlaskForm):
    """An admin's changes to one mailbox: cap, status, out of office."""

    daily_cap = _cap_field()
    status = SelectField(
        "Status",
        choices=[
            (MailboxStatus.OK.value, "OK"),
            (MailboxStatus.PAUSED.value, "Paused"),
            (MailboxStatus.DISCONNECTED.value, "Disconnected"),
        ],
    )
    out_of_office_until = DateField("Out of office until", validators=[Optional()])


class MemberForm(Form):
    """One row of a rotation: a mailbox, its weight (percent) and a remove tick."""

    mailbox_id = SelectField("Mailbox", coerce=_optional_int, validate_choice=True)
    weight = IntegerField("Weight %", validators=[Optional()])
    remove = BooleanField("Remove")


class RotationForm(FlaskForm):
    """A rotation: name, split, reset period and its members in order."""

    name = StringField(
        "Name",
        filters=[_strip],
        validators=[DataRequired(message="Give the rotation a name."), Length(max=120)],
    )
    mode = SelectField(
        "Split",
        choices=[(RotationMode.EVEN.value, "Even"), (RotationMode.WEIGHTED.value, "Weighted")],
        default=RotationMode.EVEN.value,
    )
    reset_period = SelectField(
        "Reset the counts",
        choices=[
            (ResetPeriod.DAILY.value, "Daily"),
            (ResetPeriod.WEEKLY.value, "Weekly"),
            (ResetPeriod.MONTHLY.value, "Monthly"),
            (ResetPeriod.NEVER.value, "Never"),
        ],
        default=ResetPeriod.NEVER.value,
    )
    members = FieldList(FormField(MemberForm))

    def __init__(self, *args, mailbox_choices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.members_errors: list[str] = []
        self.set_mailbox_choices(mailbox_choices)

    def set_mailbox_choices(self, mailbox_choices) -> None:
        """Offer these (id, label) mailboxes in every row (only the workspace's own)."""
        self._mailbox_choices = [("", "— none —"), *mailbox_choices]
        for entry in self.members:
            entry.form.mailbox_id.choices = self._mailbox_choices

    def add_blank_rows(self, count: int) -> None:
        for _ in range(count):
            entry = self.members.append_entry()
            entry.form.mailbox_id.choices = self._mailbox_choices
            entry.form.mailbox_id.data = None

    def chosen_members(self) -> list[tuple[int, int | None]]:
        """[(mailbox_id, weight)] of the rows that name a mailbox and are not ticked for removal."""
        return [
            (entry.form.mailbox_id.data, entry.form.weight.data)
            for entry in self.members
            if entry.form.mailbox_id.data is not None and not entry.form.remove.data
        ]


def mailbox_label(mailbox) -> str:
    user = mailbox.hubspot_user
    suffix = " (alias)" if mailbox.kind == MailboxKind.ALIAS else ""
    return f"{mailbox.email}{suffix} · {user.full_name}"
