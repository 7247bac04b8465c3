"""The bus contract: one pydantic model per topic record, each with a ``schema_version``."""

from schemas.events import ChangeEvent, ChangeMetrics, DeviceRef, Driver

__all__ = ["ChangeEvent", "ChangeMetrics", "DeviceRef", "Driver"]
