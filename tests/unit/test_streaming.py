"""The streaming window builder gives the embedded run's fingerprints, record by record."""

import numpy as np
import pytest

from tests.golden.make_golden import INPUT, SPEC
from twinwatch.fingerprint import fingerprint_flows
from twinwatch.flows import read_pcap_flows
from twinwatch.streaming import WindowBuilder, flow_records


@pytest.fixture(scope="module")
def flows():
    return read_pcap_flows(INPUT)


def test_records_per_local_end(flows):
    records = list(flow_records(flows))
    assert {r["device_mac"] for r in records} == {"d0:73:d5:3c:4d:02", "2c:aa:8e:58:69:0b", "34:3e:a4:be:cf:06",
                                                  "f4:f2:6d:00:00:01"}  # the gateway has a private address too
    without_gateway = list(flow_records(flows, gateways={"f4:f2:6d:00:00:01"}))
    assert sum(len(r["times_ms"]) for r in without_gateway) == flows.n_packets  # every packet, once
    for r in records:
        assert len(r["times_ms"]) == len(r["directions"]) == len(r["sizes"]) > 0


def test_streamed_windows_equal_embedded_fingerprints(flows):
    embedded = fingerprint_flows(flows, SPEC)
    builder = WindowBuilder(SPEC)  # default grace: the flow active timeout
    records = sorted(flow_records(flows, gateways={"f4:f2:6d:00:00:01"}), key=lambda r: max(r["times_ms"]))
    closed = []
    for record in records:
        builder.add(record)
        closed.extend(builder.close_ready())
    closed.extend(builder.flush())
    streamed = {(c.device_mac, c.day, c.window_index): c.image for c in closed if c.image is not None}
    expected = {(d.device.mac, d.day, int(w)): image for d in embedded.device_days
                for w, image in zip(d.window_index, d.images, strict=True)}
    assert set(streamed) == set(expected)
    for key, image in expected.items():
        np.testing.assert_array_equal(streamed[key], image, err_msg=str(key))
    assert len({(c.device_mac, c.day, c.window_index) for c in closed}) == len(closed)  # each window once
