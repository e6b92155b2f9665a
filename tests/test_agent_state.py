"""Device state from fixture trees: platform, CPU clocks, temperatures, Pi throttling, and ``check``."""

import json

from agent_support import board, run_agent, vcgencmd_for
from device_agents.state import decode_throttled, platform_info, snapshot, state_warnings


def test_jetson_platform_and_clocks():
    info = platform_info(board("jetson-orin-nano"))
    assert info["model"] == "NVIDIA Jetson Orin Nano Developer Kit"  # trailing NUL stripped
    assert info["nv_tegra_release"].startswith("# R36 (release), REVISION: 3.0")
    state = snapshot(board("jetson-orin-nano"), "no-such-vcgencmd")
    assert state["governors"] == ["schedutil"] and list(state["cpus"]) == ["cpu{}".format(c) for c in range(6)]
    assert state["cpus"]["cpu0"] == {"governor": "schedutil", "cur_khz": 1510400, "min_khz": 115200,
                                     "max_khz": 1510400}
    assert state["thermal"][1] == {"zone": "thermal_zone1", "type": "gpu-thermal", "temp_c": 47.468}
    assert state["throttling"] is None


def test_throttled_bits():
    # 0x50005: bits 0 and 2 now (under-voltage, throttled), bits 16 and 18 since boot.
    assert decode_throttled(0x50005) == {"raw": "0x50005", "now": ["under-voltage", "throttled"],
                                         "since_boot": ["under-voltage", "throttled"]}
    assert decode_throttled(0x80008) == {"raw": "0x80008", "now": ["soft temperature limit"],
                                         "since_boot": ["soft temperature limit"]}
    assert decode_throttled(0) == {"raw": "0x0", "now": [], "since_boot": []}


def test_pi4_under_voltage_since_boot_is_a_warning():
    state = snapshot(board("pi4-ina226"), vcgencmd_for("pi4-ina226"))
    assert state["throttling"]["since_boot"] == ["under-voltage", "throttled"]
    warnings = state_warnings(state, state)
    assert any("under-voltage" in w and "0x50000" in w for w in warnings)
    assert any("'ondemand'" in w for w in warnings)


def test_healthy_pi5_has_no_warning():
    state = snapshot(board("pi5"), vcgencmd_for("pi5"))
    assert state["throttling"] == {"raw": "0x0", "now": [], "since_boot": []}
    assert state_warnings(state, state) == []


def test_check_command_reports_the_device():
    done = run_agent("check", "--sysfs-root", board("pi5"), "--vcgencmd", vcgencmd_for("pi5"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["platform"]["model"] == "Raspberry Pi 5 Model B Rev 1.0"
    assert set(result["runtimes"]) >= {"onnxruntime", "ai_edge_litert"}
    assert result["runtimes"]["onnxruntime"]
    assert [p["probe"] for p in result["probes"]] == ["pi5-pmic"]
    assert result["governors"] == ["performance"]
    assert result["temperatures"] == [{"zone": "thermal_zone0", "type": "cpu-thermal", "temp_c": 51.85}]
    assert result["throttling"]["raw"] == "0x0"
    assert result["disk"]["free_bytes"] > 0
    assert result["python"].count(".") == 2
