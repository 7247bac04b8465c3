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
    for number, record in enumerate(records):
        record["_id"] = f"0-{number}"
        assert builder.add(record)
        assert not builder.add(dict(record))  # re-read after a restart: held once
        closed.extend(builder.close_ready())
    closed.extend(builder.flush())
    streamed = {(c.device_mac, c.day, c.window_index): c.image for c in closed if c.image is not None}
    expected = {(d.device.mac, d.day, int(w)): image for d in embedded.device_days
                for w, image in zip(d.window_index, d.images, strict=True)}
    assert set(streamed) == set(expected)
    for key, image in expected.items():
        np.testing.assert_array_equal(streamed[key], image, err_msg=str(key))
    assert len({(c.device_mac, c.day, c.window_index) for c in closed}) == len(closed)  # each window once
    assert sorted(i for _, i in builder.forgotten) == sorted(r["_id"] for r in records)  # all pruned, each once
    assert builder.held_ids == set()


def test_day_collector_hands_out_complete_days_once():
    import datetime as dt

    from twinwatch.streaming import DayCollector
    from twinwatch.windows import WindowSpec

    spec = WindowSpec()
    collector = DayCollector(spec)
    day = dt.date(2026, 1, 12)
    image = np.zeros((13, 53), np.uint8)
    for window in (3, 1, 2, 1):  # out of order, one re-sent
        end_of_window = spec.window_start_ms(day, window) + spec.window_ms
        collector.add("aa:bb:cc:dd:ee:ff", day, window, image + window, end_of_window)
    assert collector.complete() == []  # the period is not over yet
    end = collector.day_end_ms(day)
    assert end == spec.window_start_ms(day, 29) + spec.window_ms
    ((mac, got_day, images),) = collector.complete(until_ms=end)
    assert (mac, got_day) == ("aa:bb:cc:dd:ee:ff", day) and [int(i[0, 0]) for i in images] == [1, 2, 3]
    assert collector.add(mac, day, 5, image, end) is False  # late: its day was judged
    assert collector.flush() == []


def test_device_splitter_learns_the_router_as_the_embedded_run_finds_it(flows):
    from twinwatch.devices import find_routers
    from twinwatch.flows import iter_flow_rows
    from twinwatch.streaming import DeviceSplitter

    splitter = DeviceSplitter()
    records = [r for row in iter_flow_rows(str(INPUT)) for r in splitter.records(row, "x")]
    assert splitter.routers == find_routers(flows) == {"f4:f2:6d:00:00:01"}
    # at most the router's local flows that expire before its first public one go out (none here)
    assert not [r for r in records if r["device_mac"] == "f4:f2:6d:00:00:01"]
    given = DeviceSplitter({"F4:F2:6D:00:00:01"})
    assert not given.learn and all(r["device_mac"] != "f4:f2:6d:00:00:01"
                                   for row in iter_flow_rows(str(INPUT)) for r in given.records(row, "x"))
