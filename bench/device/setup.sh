# Sourced at the start of a device command: our pure-Python dependencies from carried wheels (.whl),
# the source tree on the path, unbuffered output, and the random full-size checkpoint in /tmp/full
# (made here, untimed, so that no timed step pays for it: it takes over a minute on a fresh machine).
# The GPU machine has torch, numpy, tokenizers, safetensors and huggingface_hub already.
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || return 1
export PYTHONPATH=/tmp/site:$PWD/src:$PWD/bench PYTHONUNBUFFERED=1
python3 -c 'import torch; print(torch.__version__, torch.cuda.get_device_name())'
if [ ! -f /tmp/full/model.pth ]; then
  python3 -m xtts_server.cli make-test-model /tmp/full --size full --seed 0 > /dev/null || return 1
fi
