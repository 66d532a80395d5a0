"""The login, setup, password and user forms (Flask-WTF, so each carries its CSRF token)."""
from flask import request
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

from ..web import body
from .session import CSRF_FIELD, CSRF_TIME_LIMIT, secret_key
from .users import MIN_PASSWORD, NAME_RE, ROLES

_name = [DataRequired(), Length(max=64), Regexp(NAME_RE, message="letters, digits or . _ @ -")]
_new_password = [DataRequired(), Length(min=MIN_PASSWORD, max=1024)]


class MonitorForm(FlaskForm):
    """A form whose CSRF check is the monitor's own, whatever the host's WTF_CSRF_* settings say."""

    class Meta(FlaskForm.Meta):
        csrf = True
        csrf_field_name = CSRF_FIELD
        csrf_time_limit = CSRF_TIME_LIMIT

        @property
        def csrf_secret(self):
            return secret_key()


class LoginForm(MonitorForm):
    username = StringField("Name", validators=[DataRequired(), Length(max=64)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)])


class SetupForm(MonitorForm):
    username = StringField("Admin name", validators=_name)
    password = PasswordField("Password", validators=_new_password)
    confirm = PasswordField("Repeat password", validators=[EqualTo("password", "the passwords differ")])


class PasswordForm(MonitorForm):
    current = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField("New password", validators=_new_password)
    confirm = PasswordField("Repeat", validators=[EqualTo("password", "the passwords differ")])


class UserForm(MonitorForm):
    username = StringField("Name", validators=_name)
    role = SelectField("Role", choices=list(ROLES))
    password = PasswordField("Password", validators=_new_password)


def filled(form_class):
    """Return a ``form_class`` form: on POST filled from the body by the one parser (its text fields
    only: a file, a number or an unknown field is a 400), else empty."""
    form = form_class(formdata=None)
    if request.method == "POST":
        form.process(body.formdata(*(field.name for field in form if field.name != CSRF_FIELD)))
    return form
