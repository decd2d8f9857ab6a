"""The batching engine: one loop that decodes many streams together (schedule -> execute -> update).

`Engine` (engine.py) owns the loop and the requests; `Runner` (runner.py) owns the GPU state and
runs the model on it (CUDA graphs when on a GPU); `RowSampler` (sampler.py) chooses codes for every
row at once on the device; `VocoderBatch` (vocoder.py) decodes the audio windows of many streams together.
"""

from xtts_server.engine.engine import Engine, EngineConfig, EngineRequest

__all__ = ["Engine", "EngineConfig", "EngineRequest"]
