import pytest

from monitor import Monitor, create_app
from monitor.core import config as settings
from monitor.core.config import ConfigError


@pytest.mark.parametrize("name, value, fragment", [
    ("MONITOR_FLUSH_INTERVAL", "fast", "MONITOR_FLUSH_INTERVAL='fast'"),
    ("MONITOR_FLUSH_INTERVAL", "0", "seconds, 0.1 to 60"),
    ("MONITOR_DEMO", "maybe", "0/1, true/false, on/off"),
    ("MONITOR_REDIS_URL", "http://redis", "redis://"),
    ("MONITOR_LOGIN_LIMIT_ACCOUNT", "lots", "a rate such as 5/minute"),
])
def test_a_bad_value_names_the_setting_and_what_it_accepts(app_config, name, value, fragment):
    with pytest.raises(ConfigError) as error:
        create_app({**app_config, name: value})
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_environment_values_are_read_and_named_by_their_variable():
    with pytest.raises(ConfigError, match=r"^REDIS_URL='ftp://x'"):
        settings.check_environment({"REDIS_URL": "ftp://x"})
    loaded = settings.check_environment({"MONITOR_FLUSH_INTERVAL": "2.5", "MONITOR_DEMO": "off",
                                         "MONITOR_HOST_NAME": "web-1"})
    assert loaded["MONITOR_FLUSH_INTERVAL"] == 2.5
    assert loaded["MONITOR_DEMO"] is False
    assert loaded["MONITOR_HOST_NAME"] == "web-1"


def test_defaults_apply_when_nothing_is_set(monkeypatch):
    for setting in settings.SETTINGS:
        monkeypatch.delenv(setting.env_name, raising=False)
    loaded = settings.check_environment({})
    assert loaded["MONITOR_INSTANCE_PATH"] == "instance"
    assert loaded["MONITOR_KEY_PREFIX"] == "monitor"
    assert loaded["MONITOR_HOST_NAME"]  # the machine's hostname


def test_the_settings_page_table_is_in_step_with_the_code():
    with open("docs/settings.md") as handle:
        page = handle.read()
    assert settings.markdown_table() in page, "run `make settings` to rewrite docs/settings.md's table"


def test_extension_keeps_its_state_in_app_extensions(app_config):
    from flask import Flask

    app = Flask("host")
    app.config.update(app_config)
    monitor = Monitor()
    returned = monitor.init_app(app)
    assert app.extensions["monitor"] is returned
    assert returned.store.key("a", 1) == f"{{{app_config['MONITOR_KEY_PREFIX']}}}:a:1"  # the hash tag
    assert app.extensions["cache"]  # Flask-Caching registered on the host app
    returned.flusher.stop(flush=False)


def test_demo_routes_are_off_with_monitor_demo_0(app_config):
    app = create_app({**app_config, "MONITOR_DEMO": "0"})
    assert not [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/demo")]
    assert app.test_client().get("/demo/hello").status_code == 404
