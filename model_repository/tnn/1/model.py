"""Triton Python-backend model: the twin network's arm (TorchScript) turning images into embeddings.

Every version folder holds this file and the trainer's ``twin_arm.torchscript`` (written by
``twinwatch.twin.TrainedTwin.save``); the caller takes distances between embeddings. It imports only
torch (from the virtual environment first on the server's PATH), not twinwatch.

Tensors cross the stub through DLPack, not numpy: the stub of the Triton 2.51 wheel was built against
numpy 1.x and reads numpy 2 arrays' item size wrongly (outputs came back with 0 bytes).
"""

import json
import os

import torch
import triton_python_backend_utils as pb_utils
from torch.utils.dlpack import from_dlpack, to_dlpack

ARM_FILE = "twin_arm.torchscript"  # not model.pt: that name makes Triton look for the libtorch backend
INPUT = "IMAGES"
OUTPUT = "EMBEDDINGS"


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        """Load this version's scripted arm in eval mode on CPU."""
        config = json.loads(args["model_config"])
        threads = config.get("parameters", {}).get("torch_threads", {}).get("string_value", "1")
        torch.set_num_threads(max(1, int(threads)))
        path = os.path.join(args["model_repository"], args["model_version"], ARM_FILE)
        if not os.path.isfile(path):
            raise pb_utils.TritonModelException(f"{path} is missing: the trainer writes it (TrainedTwin.save)")
        self.arm = torch.jit.load(path, map_location="cpu").eval()

    def execute(self, requests: list) -> list:
        """One forward pass over all requests the dynamic batcher grouped, split back per request."""
        try:
            images = [from_dlpack(pb_utils.get_input_tensor_by_name(r, INPUT).to_dlpack()) for r in requests]
            with torch.no_grad():
                embeddings = self.arm(torch.cat(images)).float()
        except Exception as error:  # a bad request must not take the model down: answer every request with it
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(f"tnn: {error}")) for _ in requests]
        responses, start = [], 0
        for batch in images:
            end = start + len(batch)
            output = pb_utils.Tensor.from_dlpack(OUTPUT, to_dlpack(embeddings[start:end].contiguous()))
            responses.append(pb_utils.InferenceResponse(output_tensors=[output]))
            start = end
        return responses
