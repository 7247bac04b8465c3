"""The bus contract: one pydantic model per topic record, each with a ``schema_version``."""

from schemas.events import ChangeEvent, ChangeMetrics, DeviceRef, Driver
from schemas.flows import FlowRecord
from schemas.images import WindowImage
from schemas.models import DevicePlanRef, ModelRecord
from schemas.topics import EVENTS, FLOWS, IMAGES, MODELS, dead_letter

__all__ = ["ChangeEvent", "ChangeMetrics", "DevicePlanRef", "DeviceRef", "Driver", "FlowRecord", "ModelRecord",
           "WindowImage", "EVENTS", "FLOWS", "IMAGES", "MODELS", "dead_letter"]
