"""Energy windows: trapezoid integration checked against energies worked out by hand."""

import time

import numpy as np
import pytest

from device_agents.energy import PowerMonitor, choose_window, integrate
from device_agents.power import Sampler
from device_agents.power.base import Probe

S = 1000000000  # one second in ns


def test_constant_power_times_duration():
    # 5 W sampled at 0, 1, 2, 3 s; window [0.5 s, 2.5 s]: 5 W * 2 s = 10 J, samples at 1 s and 2 s inside.
    joules, inside = integrate([0, S, 2 * S, 3 * S], [[5.0]] * 4, S // 2, 5 * S // 2)
    assert joules[0] == pytest.approx(10.0) and inside == 2


def test_linear_ramp_with_interpolated_edges():
    # P(t) = 2 t W, samples at t = 0..4 s. Window [0.5, 3.5] s: edges interpolate to 1 W and 7 W;
    # trapezoids: (1+2)/2*0.5 + (2+4)/2 + (4+6)/2 + (6+7)/2*0.5 = 0.75 + 3 + 5 + 3.25 = 12 J
    # (= integral of 2t from 0.5 to 3.5 = 3.5^2 - 0.5^2 = 12 J; trapezoids are exact on a line).
    times = [k * S for k in range(5)]
    joules, inside = integrate(times, [[2.0 * k] for k in range(5)], S // 2, 7 * S // 2)
    assert joules[0] == pytest.approx(12.0) and inside == 3


def test_window_between_two_samples_and_several_rails():
    # Rails a = 1 W -> 3 W and b = 4 W constant, samples at 0 and 1 s; window [0.25, 0.75] s:
    # a at the edges 1.5 W and 2.5 W: (1.5+2.5)/2 * 0.5 = 1 J; b: 4 * 0.5 = 2 J; no sample inside.
    joules, inside = integrate([0, S], [[1.0, 4.0], [3.0, 4.0]], S // 4, 3 * S // 4)
    assert list(joules) == pytest.approx([1.0, 2.0]) and inside == 0


def test_gross_and_net_energy_with_baseline():
    class Fake(Probe):
        max_hz = 100.0

    sampler = Sampler(Fake(rails=["VDD_IN"], primary="VDD_IN"), hz=10)
    monitor = PowerMonitor(sampler)
    monitor.baseline_w = {"VDD_IN": 2.0}
    # 3 W from 0 to 10 s sampled each second; window [1 s, 3 s]: gross 3 W * 2 s = 6 J, net 6 - 2 W * 2 s = 2 J.
    samples = (np.arange(11, dtype=np.int64) * S, np.full((11, 1), 3.0))
    m = monitor.measure("w", S, 3 * S, samples)
    assert m.gross_j == pytest.approx({"VDD_IN": 6.0}) and m.net_j == pytest.approx({"VDD_IN": 2.0})
    assert m.duration_s == 2.0 and m.samples == 1


def test_window_size_spans_five_samples():
    # 10 Hz needs 0.5 s per window; 2 ms per inference -> 250 inferences; 200 ms -> 3 (ceil 2.5).
    assert choose_window(2.0, 10)[0] == 250
    assert choose_window(200.0, 10)[0] == 3
    assert choose_window(1000.0, 40)[0] == 1
    assert choose_window(2.0, 10, requested=7) == (7, "spec power.window = 7")


def test_begin_end_window_on_a_live_sampler_and_baseline():
    class Steady(Probe):
        max_hz = 1000.0

        def read(self):
            return {"P": 4.0}

    sampler = Sampler(Steady(rails=["P"], primary="P"), hz=200).start()
    try:
        monitor = PowerMonitor(sampler)
        assert monitor.measure_baseline(0.1) == pytest.approx({"P": 4.0})
        monitor.begin_window("work")
        time.sleep(0.1)
        m = monitor.end_window("work")
    finally:
        sampler.stop()
    assert m.gross_j["P"] == pytest.approx(4.0 * m.duration_s)
    assert m.net_j["P"] == pytest.approx(0.0, abs=1e-9)
    assert m.samples >= 5
