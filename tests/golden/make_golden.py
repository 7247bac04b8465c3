"""Regenerate the golden files: ``python -m tests.golden.make_golden`` (only on purpose, then review).

The input is the first 40 minutes of a simulated night for three devices, cut to 200-byte packets;
the expected output is what ``fingerprint_pcaps`` makes of it.
"""

import datetime as dt
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

import dpkt
import numpy as np

from twinwatch.fingerprint import fingerprint_pcaps
from twinwatch.simulator.lab import LabConfig, simulate_day
from twinwatch.simulator.packets import PcapWriter
from twinwatch.windows import WindowSpec

HERE = Path(__file__).resolve().parent / "data"
CONFIG = LabConfig(days=1, devices=("bulb", "camera", "doorbell"), seed=11)
SPEC = WindowSpec(tz=CONFIG.tz)
INPUT = HERE / "lab_slice.pcap"
EXPECTED = HERE / "lab_slice_expected.npz"


def expected_arrays(pcap: Path) -> dict[str, np.ndarray]:
    result = fingerprint_pcaps([pcap], SPEC, workers=1)
    arrays = {}
    for device_day in result.device_days:
        key = f"{device_day.device.mac}_{device_day.day.isoformat()}"
        arrays[f"{key}_images"] = device_day.images
        arrays[f"{key}_windows"] = device_day.window_index
    return arrays


def main() -> None:
    HERE.mkdir(exist_ok=True)
    start = dt.datetime.combine(CONFIG.start_date, dt.time(0), tzinfo=ZoneInfo(CONFIG.tz))
    end = start.timestamp() + 40 * 60
    with tempfile.TemporaryDirectory() as tmp:
        day = Path(tmp) / "day.pcap"
        simulate_day(CONFIG, 1, day)
        with open(day, "rb") as handle, PcapWriter(INPUT, snaplen=200) as writer:
            for ts, frame in dpkt.pcap.Reader(handle):
                if ts < end:
                    writer.write(ts, frame)
    np.savez_compressed(EXPECTED, **expected_arrays(INPUT))


if __name__ == "__main__":
    main()
