"""Power probes on fixture trees that copy real boards' sysfs layouts and vcgencmd output."""

import json
import os
import shutil

import pytest

from agent_support import board, run_agent, vcgencmd_for
from device_agents.errors import AgentError
from device_agents.power import detect_probes, make_probe
from device_agents.power.pi5 import parse_pmic_adc
from device_agents.power.rapl import RaplProbe


def test_orin_nano_hwmon_rails_are_volts_times_amps_matched_by_label():
    probe = make_probe("auto", board("jetson-orin-nano"))
    assert probe.name == "jetson-ina3221-hwmon" and probe.primary == "VDD_IN"
    # hwmon3: in1 5072 mV * curr1 1184 mA = 6 005 248 µW; in2 5064 * 392 = 1 985 088; in3 5064 * 736 = 3 727 104.
    # in7 ("sum of shunt voltages") has no curr7_input and is not a rail.
    assert probe.read() == pytest.approx({"VDD_IN": 6.005248, "VDD_CPU_GPU_CV": 1.985088, "VDD_SOC": 3.727104})
    assert "excludes the carrier board" in probe.describe()["boundary"]


def test_agx_orin_reads_both_chips_and_skips_nc_channels():
    probe = make_probe("jetson-ina3221-hwmon", board("jetson-agx-orin"))
    # 1-0040 (hwmon5): 4920 mV * 3104 mA = 15.27168 W, * 1532 = 7.53744 W, * 448 = 2.20416 W;
    # 1-0041 (hwmon2): in1/in3 are "NC"; in2 4968 mV * 136 mA = 0.675648 W.
    assert probe.read() == pytest.approx({"VIN_SYS_5V0": 15.27168, "VDD_GPU_SOC": 7.53744,
                                          "VDD_CPU_CV": 2.20416, "VDDQ_VDD2_1V8AO": 0.675648})
    assert probe.primary == "VIN_SYS_5V0" and "NC" not in probe.rails


def test_jetson_nano_iio_power_files_are_milliwatts():
    probe = make_probe("auto", board("jetson-nano"))
    assert probe.name == "jetson-ina3221-iio" and probe.primary == "POM_5V_IN"
    # in_power0_input 2456 mW, in_power1_input 40 mW, in_power2_input 560 mW.
    assert probe.read() == pytest.approx({"POM_5V_IN": 2.456, "POM_5V_GPU": 0.040, "POM_5V_CPU": 0.560})


def test_pi4_ina226_found_among_other_hwmon_devices():
    probe = make_probe("auto", board("pi4-ina226"), vcgencmd_for("pi4-ina226"))
    # hwmon0 is cpu_thermal, hwmon1 rpi_volt; hwmon2 is the INA226 at 1-0040: power1_input 3125000 µW.
    assert probe.name == "ina2xx-hwmon" and probe.read() == {"ina226-1-0040": 3.125}


# Hand computation of the Pi 5 fixture, V * A per rail (W):
#   3V7_WL_SW 3.699776 * 0.09368929 = 0.3466294    3V3_SYS  3.301256 * 0.0878337  = 0.2899615
#   1V8_SYS   1.798776 * 0.168884   = 0.3037845    DDR_VDD2 1.111068 * 0.0214708  = 0.0238555
#   DDR_VDDQ  0.608424 * 0          = 0            1V1_SYS  1.109856 * 0.185456   = 0.2058295
#   0V8_SW    0.8002416 * 0.323118  = 0.2585725    VDD_CORE 0.861733 * 6.22421    = 5.3636072
#   3V3_DAC   3.309804 * 0.0001221  = 0.0004041    3V3_ADC  3.309804 * 0.00042735 = 0.0014144
#   0V8_AON   0.8002416 * 0.0057339 = 0.0045885    HDMI     5.08664 * 0.0241758   = 0.1229736
#   sum = 6.9216207 W; corrected board input = 1.1451 * 6.9216207 + 0.5879 = 8.5138478 W
PI5_SUM_W, PI5_CORRECTED_W = 6.9216207, 8.5138478


def test_pi5_pmic_pairs_currents_with_voltages_by_rail_name():
    probe = make_probe("auto", board("pi5"), vcgencmd_for("pi5"))
    assert probe.name == "pi5-pmic"
    values = probe.read()
    assert len(probe.rails) == 14 and "EXT5V" not in values and "BATT" not in values
    assert values["VDD_CORE"] == pytest.approx(5.3636072, abs=1e-6)
    assert values["HDMI"] == pytest.approx(0.1229736, abs=1e-6)
    assert values["PMIC_SUM"] == pytest.approx(PI5_SUM_W, abs=1e-6)
    assert values["PMIC_CORRECTED_TOTAL"] == pytest.approx(PI5_CORRECTED_W, abs=1e-6)
    assert probe.primary == "PMIC_CORRECTED_TOTAL"
    assert "1.1451" in probe.boundaries["PMIC_CORRECTED_TOTAL"] and "losses" in probe.boundaries["PMIC_SUM"]


def test_pmic_parser_ignores_voltage_only_rails():
    with open(os.path.join(board("pi5"), "vcgencmd", "pmic_read_adc.txt")) as handle:
        pairs = parse_pmic_adc(handle.read())
    assert len(pairs) == 12 and pairs["VDD_CORE"] == (0.861733, 6.22421)


def test_rapl_counter_wrap_adds_the_range(tmp_path):
    root = str(tmp_path / "rapl")
    shutil.copytree(board("rapl"), root, symlinks=True)
    energy = os.path.join(root, "sys/devices/virtual/powercap/intel-rapl/intel-rapl:0/energy_uj")
    clock = iter([1000000000, 1500000000, 2000000000]).__next__
    probe = RaplProbe.find(root, clock=clock)  # first read at t = 1.0 s: 262143228850 µJ
    assert probe.rails == ["package-0", "RAPL_PACKAGES"]  # subzones core/uncore are not summed
    with open(energy, "w") as handle:
        handle.write("262143328850\n")
    # t = 1.5 s: +100000 µJ = 0.1 J in 0.5 s = 0.2 W
    assert probe.read()["package-0"] == pytest.approx(0.2)
    with open(energy, "w") as handle:
        handle.write("400000\n")
    # t = 2.0 s: wrapped at max_energy_range_uj 262143328850: 262143328850 - 262143328850 + 400000
    # = 400000 µJ = 0.4 J in 0.5 s = 0.8 W
    assert probe.read() == pytest.approx({"package-0": 0.8, "RAPL_PACKAGES": 0.8})


def test_auto_detection_prefers_jetson_over_other_sensors(tmp_path):
    root = str(tmp_path / "mixed")
    shutil.copytree(board("rapl"), root, symlinks=True)
    shutil.copytree(os.path.join(board("pi4-ina226"), "sys"), os.path.join(root, "sys"), symlinks=True,
                    dirs_exist_ok=True)
    names = [p.name for p in detect_probes(root, vcgencmd_for("pi5"))]
    assert names == ["pi5-pmic", "ina2xx-hwmon", "rapl"]
    shutil.copytree(os.path.join(board("jetson-nano"), "sys"), os.path.join(root, "sys"), symlinks=True,
                    dirs_exist_ok=True)
    assert make_probe("auto", root, vcgencmd_for("pi5")).name == "jetson-ina3221-iio"


def test_nothing_found_means_no_probe(tmp_path):
    assert detect_probes(str(tmp_path), "no-such-vcgencmd") == []
    assert make_probe("auto", str(tmp_path), "no-such-vcgencmd").name == "none"
    with pytest.raises(AgentError, match="not found"):
        make_probe("rapl", str(tmp_path))
    with pytest.raises(AgentError, match="unknown power probe 'ina3221'; accepted: auto, "):
        make_probe("ina3221", str(tmp_path))


def test_probe_command_prints_rails_boundary_and_mean_power():
    done = run_agent("probe", "--seconds", "0.5", "--hz", "20", "--sysfs-root", board("jetson-orin-nano"),
                     "--vcgencmd", "no-such-vcgencmd")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [p["probe"] for p in result["detected"]] == ["jetson-ina3221-hwmon"]
    assert result["selected"]["rails"] == ["VDD_IN", "VDD_CPU_GPU_CV", "VDD_SOC"]
    assert result["hz"] == 10  # capped at the INA3221's rate
    assert 3 <= result["samples"] <= 7 and len(result["readings"]) == result["samples"]
    assert result["mean_w"]["VDD_IN"] == pytest.approx(6.005248)
