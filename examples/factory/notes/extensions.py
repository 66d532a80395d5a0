"""The app's extensions, made once and bound to each app by ``create_app``."""
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect

from monitor import Monitor

login_manager = LoginManager()
login_manager.login_view = "auth.login"
csrf = CSRFProtect()
monitor = Monitor()


@monitor.role_loader
def monitor_role():
    """Let the app's own admins into the monitor as admins, without a second login."""
    if current_user.is_authenticated and current_user.is_admin:
        return current_user.email, "admin"
    return None
