import os
import stat

from monitor.auth import session
from monitor.core.secrets import secret_key
from monitor.core.state import state


def test_secret_key_is_generated_once_with_mode_0600(tmp_path):
    first = secret_key(str(tmp_path))
    second = secret_key(str(tmp_path))
    path = tmp_path / "secret_key"
    assert first == second and len(first) == 64
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_each_instance_gets_its_own_key(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    assert secret_key(str(tmp_path / "a")) != secret_key(str(tmp_path / "b"))


def test_app_uses_the_instance_key_unless_secret_key_is_set(app_config, monkeypatch):
    from monitor import create_app

    monkeypatch.delenv("SECRET_KEY", raising=False)
    app = create_app(app_config)
    with open(os.path.join(app_config["MONITOR_INSTANCE_PATH"], "secret_key")) as handle:
        assert state(app).secret_key == handle.read().strip() and session.secret_key(app) == state(app).secret_key
    assert app.secret_key is None  # the demo host keeps nothing in Flask's session: Flask opens none
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert state(create_app(app_config)).secret_key == "from-the-environment"
