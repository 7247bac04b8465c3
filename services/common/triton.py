"""Triton glue shared by the services: the twin's arm served as an ``Embedder``, and model loading."""

from __future__ import annotations

import logging
import time

import numpy as np
import tritonclient.grpc as grpcclient
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

INPUT, OUTPUT = "IMAGES", "EMBEDDINGS"  # model_repository/tnn/config.pbtxt


class TritonSettings(BaseSettings):
    """Where the twin is served (env ``TWINWATCH_TRITON_*``)."""

    model_config = SettingsConfigDict(env_prefix="TWINWATCH_TRITON_", protected_namespaces=())
    grpc_url: str = "127.0.0.1:8001"
    model_name: str = "tnn"
    max_batch: int = 1024  # config.pbtxt max_batch_size
    timeout_s: float = 60.0


class TritonEmbedder:
    """Images → embeddings from one served version of the twin's arm (gRPC, up to ``max_batch`` a request)."""

    def __init__(self, settings: TritonSettings, version: int | None = None) -> None:
        self.settings = settings
        self.version = "" if version is None else str(version)
        self.client = grpcclient.InferenceServerClient(settings.grpc_url)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.uint8)
        parts = [self._infer(images[start:start + self.settings.max_batch])
                 for start in range(0, len(images), self.settings.max_batch)]
        return np.concatenate(parts) if parts else np.zeros((0, 32), dtype=np.float32)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        tensor = grpcclient.InferInput(INPUT, list(batch.shape), "UINT8")
        tensor.set_data_from_numpy(batch)
        result = self.client.infer(self.settings.model_name, [tensor], model_version=self.version,
                                   outputs=[grpcclient.InferRequestedOutput(OUTPUT)],
                                   client_timeout=self.settings.timeout_s)
        return result.as_numpy(OUTPUT)

    def close(self) -> None:
        self.client.close()


def load_version(settings: TritonSettings, version: int, timeout_s: float = 120.0) -> None:
    """Have Triton (explicit model control) load the repository's newest versions and wait until
    ``version`` is ready."""
    client = grpcclient.InferenceServerClient(settings.grpc_url)
    try:
        client.load_model(settings.model_name)
        deadline = time.monotonic() + timeout_s
        while not client.is_model_ready(settings.model_name, str(version)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"Triton did not make {settings.model_name} version {version} ready "
                                   f"within {timeout_s:.0f} s")
            time.sleep(0.5)
        logger.info("Triton serves %s version %d", settings.model_name, version)
    finally:
        client.close()
