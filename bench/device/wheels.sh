#!/usr/bin/env bash
# Build the wheel folders that device commands carry (the GPU machine has no internet; it already
# has torch, numpy, tokenizers, safetensors and huggingface_hub): .whl for the server and the
# benchmarks (bench/device/setup.sh), .whl-ref for the reference (bench/device/setup_reference.sh).
# Run from the repository root on a machine with access to the package index.
set -euo pipefail
platform=(--only-binary=:all: --python-version 3.12 --implementation cp
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
python3 -m pip download -q --no-deps "${platform[@]}" -d .whl \
  'num2words>=0.5.14,<0.6' 'py3langid<0.5' soundfile cffi pycparser av soxr fastapi starlette uvicorn \
  websockets pydantic pydantic-core annotated-types typing-inspection pydantic-settings python-dotenv \
  python-multipart annotated-doc opentelemetry-api importlib-metadata zipp typing-extensions
python3 -m pip download -q --no-deps "${platform[@]}" -d .whl-ref \
  coqui-tts==0.28.0 anyascii 'coqpit-config<0.3.0,>=0.2.5' 'coqui-tts-trainer<0.5.0,>=0.4.0' inflect \
  ko-speech-tools 'librosa==0.11.0' monotonic-alignment-search pysbd audioread pooch decorator \
  more-itertools typeguard jaraco.functools platformdirs
