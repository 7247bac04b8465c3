import pytest
from pydantic import ValidationError

from schemas.flows import FlowRecord
from schemas.generate import FOLDER, rendered
from schemas.images import WindowImage
from schemas.topics import dead_letter
from twinwatch.images import IMAGE_SHAPE


def test_json_schemas_match_the_models():
    for name, text in rendered().items():
        assert (FOLDER / name).read_text() == text, f"{name} drifted: run python -m schemas.generate"


def test_window_image_shape_is_the_core_image_shape():
    good = [[0] * IMAGE_SHAPE[1] for _ in range(IMAGE_SHAPE[0])]
    WindowImage(device_mac="aa:bb:cc:dd:ee:ff", day="2026-01-12", window_index=0, window_start_ms=0,
                window_end_ms=900_000, pixels=good)
    with pytest.raises(ValidationError, match="13 rows of 53"):
        WindowImage(device_mac="aa:bb:cc:dd:ee:ff", day="2026-01-12", window_index=0, window_start_ms=0,
                    window_end_ms=1, pixels=good[:-1])


def test_flow_record_checks_its_packets():
    base = dict(device_mac="aa:bb:cc:dd:ee:ff", source="x.pcap", client_mac="aa:bb:cc:dd:ee:ff",
                server_mac="11:22:33:44:55:66", client_ip="192.168.1.2", server_ip="52.1.2.3", client_port=40000,
                server_port=443, ip_protocol=6, application_name="TLS", first_seen_ms=1)
    FlowRecord(**base, times_ms=[1, 2], directions=[0, 1], sizes=[60, 60])
    with pytest.raises(ValidationError, match="equal length"):
        FlowRecord(**base, times_ms=[1, 2], directions=[0], sizes=[60, 60])
    with pytest.raises(ValidationError, match="neither end"):
        FlowRecord(**(base | {"device_mac": "00:00:00:00:00:01"}), times_ms=[1], directions=[0], sizes=[60])
    assert dead_letter("twinwatch.flows.v1") == "twinwatch.flows.v1.dlq"


def test_change_event_id_names_device_day_and_model():
    from schemas.events import ChangeEvent, DeviceRef

    def event(model: str, verdict: str = "stable") -> ChangeEvent:
        return ChangeEvent(device=DeviceRef(mac="aa:bb:cc:dd:ee:ff"), day="2026-01-15", verdict=verdict, reason="",
                           day_windows=30, baseline_windows=30, baseline_day="2026-01-12", model_version=model)

    assert event("tnn-1").event_id == event("tnn-1", "changed").event_id  # a re-sent event keeps its id
    assert event("tnn-1").event_id != event("tnn-2").event_id
    assert '"event_id"' in event("tnn-1").model_dump_json()
