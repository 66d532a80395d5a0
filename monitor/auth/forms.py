"""The login and setup forms (Flask-WTF, so each carries its CSRF token)."""
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Regexp

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
