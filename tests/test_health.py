from datetime import datetime

from monitor.core.state import state


def test_health_has_every_contract_field(client):
    response = client.get("/health")
    body = response.get_json()
    assert response.status_code == 200
    assert body["status"] == "healthy"
    assert datetime.fromisoformat(body["timestamp"]).tzinfo is not None
    worker = body["worker"]
    assert set(worker) == {"id", "pid", "host", "clustered", "uptime", "memory"}
    assert worker["host"] == "testhost" and worker["id"] == f"testhost:{worker['pid']}"
    assert worker["clustered"] is False
    assert worker["memory"]["rss"] > 10
    assert body["redis"] == {"ok": True}
    assert all(isinstance(flag, bool) for flag in body["monitoring"].values())
    assert response.headers["Cache-Control"] == "no-store"


def test_health_reveals_no_setting_or_secret(app, client):
    text = client.get("/health").get_data(as_text=True)
    for value in (state(app).secret_key, app.config["MONITOR_REDIS_URL"], app.config["MONITOR_KEY_PREFIX"],
                  app.config["MONITOR_INSTANCE_PATH"]):
        assert value not in text


def test_health_is_degraded_when_redis_is_gone(system_redis, app_config, tmp_path):
    from monitor import create_app

    redis_server = system_redis()
    app = create_app({**app_config, "MONITOR_REDIS_URL": redis_server.url})
    client = app.test_client()
    assert client.get("/health").get_json()["status"] == "healthy"
    redis_server.kill()
    import time
    time.sleep(0.6)  # past the cached answer of the previous check
    body = client.get("/health").get_json()
    assert body["status"] == "degraded" and body["redis"] == {"ok": False}
