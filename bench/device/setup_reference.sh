# Sourced in a device command to run the reference (coqui-tts 0.28.0) from carried wheels (.whl-ref
# and .whl); torchcodec is satisfied by an empty stub (clips are read with soundfile).
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/siteref \
  .whl-ref/*.whl .whl/num2words-*.whl .whl/soundfile-*.whl .whl/soxr-*.whl .whl/cffi-*.whl .whl/pycparser-*.whl || return 1
mkdir -p /tmp/siteref/torchcodec /tmp/siteref/torchcodec-0.9.0.dist-info
touch /tmp/siteref/torchcodec/__init__.py
printf 'Metadata-Version: 2.1\nName: torchcodec\nVersion: 0.9.0\n' > /tmp/siteref/torchcodec-0.9.0.dist-info/METADATA
