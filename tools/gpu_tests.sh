#!/usr/bin/env bash
# Run the gpu-marked tests with the interpreter's own torch, without installing
# anything (for GPU machines that have torch and pytest but no nox or network).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(printf '%s:' "$PWD"/packages/*/src)
export PYTHONPATH="${src%:}${PYTHONPATH:+:$PYTHONPATH}"
python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "CUDA is not available: tools/gpu_tests.sh needs a GPU")'
exec python3 -m pytest -m gpu -p no:cacheprovider "$@"
