#!/bin/sh
# Runs the EMD engine adapter with its own dependencies on PYTHONPATH; the adapter starts the engine
# with the image's original PYTHONPATH (EMD_ENGINE_PYTHONPATH) so the engine's packages are untouched.
# SageMaker starts the container as `<image> serve`: the argument is accepted and ignored.
export EMD_ENGINE_PYTHONPATH="${PYTHONPATH:-}"
PYTHONPATH="${EMD_ADAPTER_PATH:-/opt/emd/deps:/opt/emd}" exec "${EMD_PYTHON:-python3}" -m serving.engine "$@"
