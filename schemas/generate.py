"""Write the JSON Schema of every bus record: ``python -m schemas.generate`` (a test fails on drift)."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import ChangeEvent
from schemas.flows import FlowRecord
from schemas.images import WindowImage
from schemas.models import ModelRecord

MODELS = {"flow_record": FlowRecord, "window_image": WindowImage, "change_event": ChangeEvent,
          "model_record": ModelRecord}
FOLDER = Path(__file__).resolve().parent / "json"


def rendered() -> dict[str, str]:
    """Each record as it is written on the bus (serialisation mode: computed fields such as event_id too)."""
    return {f"{name}.schema.json": json.dumps(model.model_json_schema(mode="serialization"), indent=2,
                                              sort_keys=True) + "\n"
            for name, model in MODELS.items()}


def main() -> None:
    FOLDER.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (FOLDER / name).write_text(text)


if __name__ == "__main__":
    main()
