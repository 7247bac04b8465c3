"""The local stack against real clients: a Kafka round trip, Triton serving the twin arm, clean stop."""

from __future__ import annotations

import socket
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
import tritonclient.grpc as grpcclient

from tests.integration.kafka_helpers import consume, produce
from twinwatch.images import IMAGE_SHAPE
from twinwatch.stack import LocalStack, StackError, StackSettings, StackStatus
from twinwatch.twin import ARM_TORCHSCRIPT_FILE, TwinNetwork

pytestmark = pytest.mark.integration


def test_kafka_round_trip(stack_status: StackStatus) -> None:
    topic = f"twinwatch.test.{uuid.uuid4().hex[:8]}"  # auto-created by the broker
    sent = [(f"device-{i % 3}".encode(), f'{{"n": {i}}}'.encode()) for i in range(50)]
    produce(stack_status.bootstrap_servers, topic, sent)
    assert consume(stack_status.bootstrap_servers, topic, len(sent)) == sent


def test_triton_serves_tnn_with_the_core_shapes(stack_status: StackStatus) -> None:
    client = grpcclient.InferenceServerClient(stack_status.triton_grpc_url)
    assert client.is_server_ready()
    assert client.is_model_ready("tnn")
    config = client.get_model_config("tnn", as_json=True)["config"]
    (images,) = config["input"]
    (embeddings,) = config["output"]
    assert (images["name"], images["data_type"]) == ("IMAGES", "TYPE_UINT8")
    assert [int(d) for d in images["dims"]] == list(IMAGE_SHAPE)
    assert (embeddings["name"], embeddings["data_type"]) == ("EMBEDDINGS", "TYPE_FP32")
    assert [int(d) for d in embeddings["dims"]] == [TwinNetwork().arm.head[-1].out_features]
    assert config["backend"] == "python"
    assert int(config["max_batch_size"]) == 1024
    assert "dynamic_batching" in config


def test_triton_embeddings_equal_in_process_torch(stack_status: StackStatus) -> None:
    images = np.random.default_rng(7).integers(0, 256, size=(96, *IMAGE_SHAPE), dtype=np.uint8)
    client = grpcclient.InferenceServerClient(stack_status.triton_grpc_url)
    # the newest version served: 1 (an untrained arm) until a trainer of this session publishes 2, 3, …
    version = max(int(v) for v in client.get_model_metadata("tnn", as_json=True)["versions"])
    tensor = grpcclient.InferInput("IMAGES", list(images.shape), "UINT8")
    tensor.set_data_from_numpy(images)
    served = client.infer("tnn", [tensor], model_version=str(version)).as_numpy("EMBEDDINGS")

    arm_file = Path(stack_status.model_repository) / "tnn" / str(version) / ARM_TORCHSCRIPT_FILE
    arm = torch.jit.load(str(arm_file), map_location="cpu").eval()
    with torch.no_grad():
        expected = arm(torch.from_numpy(images)).numpy()
    assert served.shape == expected.shape == (96, 32)
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)


def test_up_again_is_a_no_op(stack: LocalStack, stack_status: StackStatus) -> None:
    started = time.monotonic()
    again = stack.up()
    assert time.monotonic() - started < 10
    assert {n: s.pid for n, s in again.services.items()} == {n: s.pid for n, s in stack_status.services.items()}
    assert again.bootstrap_servers == stack_status.bootstrap_servers


def test_up_with_other_service_settings_restarts_only_the_services(stack: LocalStack,
                                                                    stack_status: StackStatus) -> None:
    other = LocalStack(stack.settings.model_copy(update={"tz": "Europe/Berlin"}))
    changed = other.up()
    try:
        for name in ("kafka", "triton"):
            assert changed.services[name].pid == stack_status.services[name].pid
        for name in ("windower", "evaluator"):
            assert changed.services[name].pid != stack_status.services[name].pid and changed.services[name].running
        environment = Path(f"/proc/{changed.services['evaluator'].pid}/environ").read_bytes().split(b"\0")
        assert b"TWINWATCH_EVALUATOR_TZ=Europe/Berlin" in environment
    finally:
        stack.up()  # back to the session's settings for the other tests


def test_stack_runs_the_services(stack: LocalStack, stack_status: StackStatus) -> None:
    assert set(stack_status.services) == {"kafka", "triton", "windower", "trainer", "evaluator"}
    for name in ("windower", "evaluator"):
        assert stack_status.services[name].running, (stack.logs_dir / f"{name}.log").read_text()[-2000:]
    assert stack_status.services["trainer"].job and stack_status.running
    deadline = time.monotonic() + 60  # the evaluator found its state topic and is polling
    while "state of 0 device(s) restored" not in (stack.logs_dir / "evaluator.log").read_text():
        assert time.monotonic() < deadline, (stack.logs_dir / "evaluator.log").read_text()[-2000:]
        time.sleep(1)


@pytest.mark.stops_stack
def test_down_leaves_no_process(stack: LocalStack, stack_status: StackStatus) -> None:
    running = " ".join(stack.processes().values())
    for program in ("kafka.Kafka", "tritonserver", "triton_python_backend_stub", "services.windower.app",
                    "services.trainer.main", "services.evaluator.main"):
        assert program in running

    stopped = stack.down()
    assert stack.processes() == {}
    assert not stopped.running
    assert not any(s.running or s.listening for s in stopped.services.values())
    assert not (stack.run_dir / "pids" / "kafka.pid").exists()


def test_a_failed_start_names_the_log_and_leaves_nothing(java_and_maven: None, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = StackSettings(run_dir=tmp_path / "stack", triton=False, kafka_port=taken.getsockname()[1])
        local = LocalStack(settings)
        with pytest.raises(StackError) as failure:
            local.up()
    log = (local.logs_dir / "kafka.log").read_text()
    assert f"read {local.logs_dir / 'kafka.log'}" in str(failure.value)
    assert "exited" in str(failure.value) and "Address already in use" in log, f"{failure.value}\n{log[-3000:]}"
    assert local.processes() == {}
