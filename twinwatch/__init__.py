"""twinwatch: per-device, per-day firmware change detection from passive IoT traffic."""

__version__ = "0.1.0"
