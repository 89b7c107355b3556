"""AgentConfig: defaults, the INI file, environment overrides."""

import pytest

from agents.kvm.config import AgentConfig, ConfigError, default_config_file


def test_defaults_and_paths_derived_from_the_state_dir():
    config = AgentConfig.load(None, environ={})
    assert (config.host, config.port, config.driver) == ("0.0.0.0", 7070, "libvirt")
    assert config.state_dir == "/var/lib/zstack/kvmagent"
    assert config.log_file == "/var/lib/zstack/kvmagent/kvmagent.log"
    assert config.pid_file == "/var/lib/zstack/kvmagent/kvmagent.pid"
    assert config.version == "dev"
    assert (config.callback_retries, config.callback_retry_interval) == (5, 1.0)
    assert config.workers_threads == 32
    assert (config.libvirt_uri, config.vm_watch_interval) == ("qemu:///system", 2.0)
    assert (config.simulated_delay, config.simulated_cpu_num, config.simulated_memory) == (0.0, 0, 0)
    assert config.simulated_fail_paths == []


def test_file_settings_are_typed(tmp_path):
    ini = tmp_path / "kvmagent.ini"
    ini.write_text("[kvmagent]\nport = 7171\ndriver = simulated\nstate_dir = /srv/agent\n"
                   "callback_retry_interval = 0.25\nsimulated_memory = 8589934592\n"
                   "simulated_fail_paths = /vm/start, /ps/vol-1.qcow2 ,\nversion = abc123\n")
    config = AgentConfig.load(ini, environ={})
    assert config.port == 7171 and isinstance(config.port, int)
    assert config.driver == "simulated"
    assert config.callback_retry_interval == 0.25
    assert config.simulated_memory == 8 * 2**30
    assert config.simulated_fail_paths == ["/vm/start", "/ps/vol-1.qcow2"]
    assert config.version == "abc123"
    assert config.log_file == "/srv/agent/kvmagent.log"


def test_environment_overrides_the_file(tmp_path):
    ini = tmp_path / "kvmagent.ini"
    ini.write_text("[kvmagent]\nport = 7171\nlog_file = /var/log/a.log\n")
    config = AgentConfig.load(ini, environ={"ZSTACK_KVMAGENT_PORT": "7272",
                                            "ZSTACK_KVMAGENT_STATE_DIR": str(tmp_path),
                                            "ZSTACK_KVMAGENT_WORKERS_THREADS": "4"})
    assert config.port == 7272
    assert config.workers_threads == 4
    assert config.state_dir == str(tmp_path)
    assert config.pid_file == str(tmp_path / "kvmagent.pid")
    assert config.log_file == "/var/log/a.log"  # explicit settings are not re-derived


def test_unknown_keys_are_ignored_and_other_sections_too(tmp_path):
    ini = tmp_path / "kvmagent.ini"
    ini.write_text("[kvmagent]\nfrom_the_future = 1\nport = 1\n[other]\nport = 2\n")
    assert AgentConfig.load(ini, environ={}).port == 1


def test_bad_values_and_missing_files_are_errors(tmp_path):
    with pytest.raises(ConfigError, match="port"):
        AgentConfig.load(None, environ={"ZSTACK_KVMAGENT_PORT": "seventy"})
    with pytest.raises(ConfigError, match="cannot read"):
        AgentConfig.load(tmp_path / "missing.ini", environ={})
    duplicated = tmp_path / "duplicated.ini"
    duplicated.write_text("[kvmagent]\nport = 1\nport = 2\n")
    with pytest.raises(ConfigError, match="bad config file .*already exists"):
        AgentConfig.load(duplicated, environ={})


def test_local_url_uses_loopback_for_a_wildcard_bind():
    assert AgentConfig(port=7070).local_url == "http://127.0.0.1:7070"
    assert AgentConfig(host="10.0.0.5", port=1).local_url == "http://10.0.0.5:1"
    assert AgentConfig(host="::1", port=1).local_url == "http://[::1]:1"


def test_default_config_file_comes_from_the_environment(tmp_path):
    assert default_config_file({"ZSTACK_KVMAGENT_CONFIG": "/x.ini"}) == "/x.ini"
