"""Settings: overrides > environment > defaults, and the child-process round trip."""

import dataclasses
from pathlib import Path

from mn.config import ENV_PREFIX, Settings


def test_defaults_without_environment():
    s = Settings.from_env({})
    assert s == Settings()
    assert s.port == 8080 and s.bus_url == "memory://" and s.var_dir == Path("var")


def test_environment_beats_defaults_and_is_coerced():
    env = {"ZSTACK_PORT": "9090", "ZSTACK_HEARTBEAT_INTERVAL": "0.5", "ZSTACK_VAR_DIR": "/srv/zs",
           "ZSTACK_BUS_URL": "amqp://guest:guest@127.0.0.1:5672//", "ZSTACK_HEARTBEAT_MISSES": "7"}
    s = Settings.from_env(env)
    assert s.port == 9090 and isinstance(s.port, int)
    assert s.heartbeat_interval == 0.5 and isinstance(s.heartbeat_interval, float)
    assert s.heartbeat_misses == 7
    assert s.var_dir == Path("/srv/zs") and isinstance(s.var_dir, Path)
    assert s.bus_url == "amqp://guest:guest@127.0.0.1:5672//"
    assert s.bind == Settings.bind  # untouched fields keep their default


def test_override_beats_environment():
    env = {"ZSTACK_PORT": "9090", "ZSTACK_LOG_LEVEL": "DEBUG"}
    s = Settings.from_env(env, port=7070, var_dir="/tmp/x")
    assert s.port == 7070
    assert s.var_dir == Path("/tmp/x")
    assert s.log_level == "DEBUG"
    # String overrides are coerced like environment values.
    assert Settings.from_env({}, port="6060").port == 6060


def test_none_overrides_are_ignored():
    env = {"ZSTACK_PORT": "9090"}
    s = Settings.from_env(env, port=None, bus_url=None, call_timeout=None)
    assert s.port == 9090
    assert s.bus_url == Settings.bus_url
    assert s.call_timeout == Settings.call_timeout


def test_empty_environment_values_fall_through_to_defaults():
    s = Settings.from_env({"ZSTACK_PORT": "", "ZSTACK_DB_URL": ""})
    assert s.port == 8080 and s.db_url == ""


def test_unrelated_environment_is_ignored():
    s = Settings.from_env({"PORT": "1", "ZSTACK_NOT_A_SETTING": "x", "zstack_port": "2"})
    assert s == Settings()


def test_from_env_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("ZSTACK_PORT", "8181")
    assert Settings.from_env().port == 8181


def test_to_env_round_trip():
    for s in (Settings(), Settings(
            port=8123, bind="0.0.0.0", node_ip="10.0.0.5", var_dir=Path("/var/lib/zs"),
            db_url="mysql+pymysql://root@127.0.0.1/zstack", bus_url="amqp://u:p@h:5672//",
            heartbeat_interval=0.2, heartbeat_misses=5, db_threads=3, call_timeout=12.5,
            services="a.b:C,d.e:F", log_level="DEBUG")):
        env = s.to_env()
        assert set(env) == {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
        assert all(isinstance(v, str) for v in env.values())
        assert Settings.from_env(env) == s


def test_database_url_defaults_to_sqlite_under_var_dir(tmp_path, monkeypatch):
    s = Settings(var_dir=tmp_path / "state")
    assert s.database_url == f"sqlite:///{(tmp_path / 'state' / 'zstack.db').resolve()}"
    # A relative var_dir is made absolute, so child processes agree on it.
    monkeypatch.chdir(tmp_path)
    rel = Settings(var_dir=Path("var"))
    assert rel.database_url == f"sqlite:///{tmp_path.resolve() / 'var' / 'zstack.db'}"
    assert Path(rel.database_url.removeprefix("sqlite:///")).is_absolute()


def test_explicit_db_url_wins():
    url = "mysql+pymysql://root@127.0.0.1/zstack"
    assert Settings(db_url=url).database_url == url
    assert Settings.from_env({"ZSTACK_DB_URL": url}).database_url == url


def test_callback_url_and_host_name():
    s = Settings(node_ip="10.1.2.3", port=8989)
    assert s.callback_url == "http://10.1.2.3:8989/zstack/asyncrest/callback"
    assert s.host_name == "10.1.2.3"
