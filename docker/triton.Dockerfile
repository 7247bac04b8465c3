# Triton with the Python backend and torch for model_repository/tnn/<n>/model.py (the twin's arm).
FROM nvcr.io/nvidia/tritonserver:24.10-py3
RUN pip install --no-cache-dir torch==2.9.1 numpy
