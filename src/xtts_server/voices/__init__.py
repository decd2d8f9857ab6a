"""Named voices: a crash-safe store of cloned voices on disk, the model's studio voices, and the import
of a folder of clips at start-up.

    store = open_store(tts, "voices/")                     # stored + studio voices, on tts.device
    import_folder(store, "speakers/", tts.clone_voice)     # alice.wav -> "alice", bob/*.wav -> "bob"
    store.add("carol", tts.clone_voice(clips), clips_info=[ClipInfo("carol.wav", 4.2)])
    tts.synthesize("Hi.", "en", store.get("carol"))
"""

from xtts_server.voices.clips import ClipInfo, clip_seconds
from xtts_server.voices.codec import voice_from_json, voice_to_json
from xtts_server.voices.engine import StudioVoices, model_signature, open_store
from xtts_server.voices.errors import VoiceExists, VoiceReadOnly, VoiceStorageError
from xtts_server.voices.importer import ImportReport, import_folder
from xtts_server.voices.info import ModelSignature, VoiceInfo
from xtts_server.voices.names import MAX_NAME_LENGTH, NAME_RULE, name_key, validate_name
from xtts_server.voices.store import VoiceStore

__all__ = [
    "MAX_NAME_LENGTH",
    "NAME_RULE",
    "ClipInfo",
    "ImportReport",
    "ModelSignature",
    "StudioVoices",
    "VoiceExists",
    "VoiceInfo",
    "VoiceReadOnly",
    "VoiceStorageError",
    "VoiceStore",
    "clip_seconds",
    "import_folder",
    "model_signature",
    "name_key",
    "open_store",
    "validate_name",
    "voice_from_json",
    "voice_to_json",
]
