"""FlowRecord: one flow as one device saw it, with its packets (topic twinwatch.flows.v1, key: device MAC)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

MAC = r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$"


class FlowRecord(BaseModel):
    """A flow with each packet's time, direction and size, so windows can be cut anywhere.

    ``device_mac`` is the end this record is keyed by; a flow between two local devices is
    published once for each. Direction 0 is client → server (the client sent the first packet).
    """

    schema_version: Literal[1] = 1
    device_mac: str = Field(pattern=MAC)
    source: str = Field(description="capture that saw the flow (file or interface)")
    client_mac: str
    server_mac: str
    client_ip: str
    server_ip: str
    client_port: int = Field(ge=0, le=65535)
    server_port: int = Field(ge=0, le=65535)
    ip_protocol: int = Field(ge=0, le=255)
    application_name: str
    first_seen_ms: int = Field(ge=0)
    times_ms: list[int]
    directions: list[Literal[0, 1]]
    sizes: list[int]

    @model_validator(mode="after")
    def _packets_line_up(self) -> FlowRecord:
        if not (len(self.times_ms) == len(self.directions) == len(self.sizes)) or not self.times_ms:
            raise ValueError("times_ms, directions and sizes must be non-empty and of equal length")
        if self.device_mac not in (self.client_mac, self.server_mac):
            raise ValueError(f"device_mac {self.device_mac} is neither end of the flow")
        return self
