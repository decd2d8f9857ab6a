"""The `xtts-server` command: make-test-model, synth."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

from xtts_server.errors import XTTSError


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-dir", help="a released XTTS v2 directory; without it coqui/XTTS-v2 is downloaded")
    p.add_argument(
        "--accept-license",
        action="store_true",
        help="accept the Coqui Public Model License (non-commercial) to download the weights "
        "(or set COQUI_TOS_AGREED=1)",
    )
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xtts-server", description="Fast, dependable XTTS v2 text to speech."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)

    make = sub.add_parser(
        "make-test-model",
        help="write a random-weight checkpoint directory in the released format (tests, benchmarks)",
    )
    make.add_argument(
        "dir", help="directory to write config.json, model.pth, vocab.json, speakers_xtts.pth to"
    )
    make.add_argument("--size", choices=("tiny", "full"), default="tiny", help="full = the release's size")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument(
        "--config-as-dict",
        action="store_true",
        help="pickle the config as a dict (as coqui-tts 0.28 rewrites it)",
    )

    serve = sub.add_parser(
        "serve",
        help="run the HTTP server",
        description="Run the HTTP server. Every flag can also be set as XTTS_<FLAG> in the environment "
        "(e.g. XTTS_PORT=9000); flags win.",
        argument_default=argparse.SUPPRESS,
    )
    serve.add_argument(
        "--model-dir", help="a released XTTS v2 directory; without it coqui/XTTS-v2 is downloaded"
    )
    serve.add_argument(
        "--accept-license",
        action="store_true",
        help="accept the Coqui Public Model License (or COQUI_TOS_AGREED=1)",
    )
    serve.add_argument("--device", help="cpu, cuda, cuda:N or auto (default)")
    serve.add_argument(
        "--dtype", choices=("auto", "float32", "float16", "bfloat16"), help="auto (default): float16 on a GPU"
    )
    serve.add_argument(
        "--engine", choices=("auto", "on", "off"), help="the batching engine (default auto: on a GPU)"
    )
    serve.add_argument("--engine-slots", type=int, help="streams the engine decodes together (default 128)")
    serve.add_argument(
        "--engine-fused-batches",
        type=int,
        help="fused Triton decode up to this batch size (default: 16 on a GPU in half precision; 0: off)",
    )
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    serve.add_argument("--port", type=int, help="default 8000")
    serve.add_argument("--voices-dir", help="where cloned voices are stored (default ./voices)")
    serve.add_argument("--speakers-dir", help="folder of clips imported as voices at start-up")
    serve.add_argument("--default-voice", help="voice used when a request names none")
    serve.add_argument("--max-new-tokens", type=int, help="cap on audio tokens per sentence (default 602)")
    serve.add_argument("--max-text-chars", type=int)
    serve.add_argument("--max-upload-bytes", type=int)
    serve.add_argument("--max-concurrent", type=int, help="syntheses running at once")
    serve.add_argument("--max-queued", type=int, help="requests waiting beyond those; more get 503")
    serve.add_argument("--max-clips", type=int, help="most clips per uploaded voice (default 10)")
    serve.add_argument(
        "--openai-language", help="language for /v1/audio/speech requests that name none (default: auto)"
    )
    serve.add_argument(
        "--max-streams-per-key", type=int, help="syntheses one API key may run at once; more get 429"
    )
    serve.add_argument(
        "--queue-timeout", dest="queue_timeout_s", type=float, help="seconds to wait for a slot (default 30)"
    )
    serve.add_argument(
        "--request-timeout", dest="request_timeout_s", type=float, help="seconds one request may take (600)"
    )
    serve.add_argument(
        "--body-timeout",
        dest="body_timeout_s",
        type=float,
        help="seconds a request body may take to arrive (default 60)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        dest="shutdown_timeout_s",
        type=float,
        help="on SIGTERM, seconds running streams may finish before they are cut (default 25)",
    )
    serve.add_argument(
        "--api-key-file", help="file of API keys, one a line (or XTTS_API_KEYS=key1,key2); keys are required"
    )
    serve.add_argument(
        "--no-auth", action="store_true", help="serve without API keys on a non-loopback address (open)"
    )
    serve.add_argument(
        "--cors-origin",
        dest="cors_origins",
        action="append",
        help="an origin allowed by CORS, e.g. https://app.example.com (repeat; '*' for any)",
    )
    serve.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    serve.add_argument("--log-format", choices=("text", "json"), help="json: one JSON object a line")
    serve.add_argument("--log-text", action="store_true", help="log the text of requests (off by default)")
    serve.add_argument("--no-warmup", dest="warmup", action="store_false")
    ray = serve.add_argument_group("Ray Serve (the ray extra): replicas of this server, one engine each")
    ray.add_argument("--ray", action="store_true", help="serve through Ray Serve instead of one process")
    ray.add_argument("--replicas", type=int, help="replicas (the minimum when autoscaling; default 1)")
    ray.add_argument("--max-replicas", type=int, help="autoscale up to this many replicas")
    ray.add_argument("--gpus-per-replica", type=float, help="default 1, or 0 with --device cpu")
    ray.add_argument("--ray-address", help="a Ray cluster to join (default: start one on this machine)")

    synth = sub.add_parser("synth", help="synthesize one text to a WAV file")
    synth.add_argument("text")
    _add_model_args(synth)
    voice = synth.add_mutually_exclusive_group(required=True)
    voice.add_argument("--voice", help="a studio voice of the model, e.g. 'Ana Florence'")
    voice.add_argument("--ref", nargs="+", metavar="FILE", help="reference clip(s) to clone the voice from")
    synth.add_argument("--language", "-l", default="en", help="language code, or 'auto' (default: en)")
    synth.add_argument("-o", "--output", required=True, help="output .wav path")
    synth.add_argument("--temperature", type=float)
    synth.add_argument("--top-k", type=int)
    synth.add_argument("--top-p", type=float)
    synth.add_argument("--repetition-penalty", type=float)
    synth.add_argument("--speed", type=float, default=1.0)
    synth.add_argument("--seed", type=int)
    synth.add_argument("--greedy", action="store_true", help="argmax decoding instead of sampling")
    synth.add_argument("--max-new-tokens", type=int)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if args.command == "make-test-model":
            from xtts_server.random_model import make_test_model

            started = time.perf_counter()
            path = make_test_model(args.dir, args.size, args.seed, config_as_dict=args.config_as_dict)
            seconds = time.perf_counter() - started
            print(f"wrote a {args.size} random-weight XTTS v2 checkpoint to {path} in {seconds:.1f} s")
        elif args.command == "serve":
            return _serve(args)
        elif args.command == "synth":
            return _synth(args)
    except XTTSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


RAY_FLAGS = ("replicas", "max_replicas", "gpus_per_replica", "ray_address")


def _serve(args: argparse.Namespace) -> int:
    import logging.config

    from pydantic import ValidationError

    from xtts_server.server.app import create_app
    from xtts_server.server.logs import log_config
    from xtts_server.server.settings import Settings
    from xtts_server.server.shutdown import serve

    flags = {k: v for k, v in vars(args).items() if k not in ("command", "verbose")}
    on_ray = flags.pop("ray", False)
    ray_flags = {k: flags.pop(k) for k in RAY_FLAGS if k in flags}
    if "ray_address" in ray_flags:
        ray_flags["address"] = ray_flags.pop("ray_address")
    try:
        settings = Settings(**flags)
        if on_ray:
            from xtts_server.distributed.options import RaySettings

            ray_settings = RaySettings(**ray_flags)
    except ValidationError as e:
        print(f"error: invalid setting: {e}", file=sys.stderr)
        return 2
    if ray_flags and not on_ray:
        print(f"error: {', '.join(sorted(ray_flags))} need --ray", file=sys.stderr)
        return 2
    if on_ray:
        logging.config.dictConfig(log_config(settings.log_level, settings.log_format))
        try:
            from xtts_server.distributed.deployment import run
        except ImportError as e:
            print(f"error: --ray needs the ray extra (pip install 'xtts-server[ray]'): {e}", file=sys.stderr)
            return 2
        return run(settings, ray_settings)
    logging.config.dictConfig(log_config(settings.log_level, settings.log_format))
    app = create_app(settings)  # InsecureConfig (an XTTSError): reported by main, exit status 2
    return serve(app, settings)


def _synth(args: argparse.Namespace) -> int:
    import soundfile as sf

    from xtts_server.tts import XTTS

    tts = XTTS.load(args.model_dir, device=args.device, accept_license=args.accept_license)
    voice = tts.studio_voice(args.voice) if args.voice else tts.clone_voice(args.ref)
    started = time.perf_counter()
    out = tts.synthesize(
        args.text,
        args.language,
        voice,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        repetition_penalty=args.repetition_penalty,
        speed=args.speed,
        seed=args.seed,
        do_sample=not args.greedy,
        max_new_tokens=args.max_new_tokens,
    )
    sf.write(args.output, out.audio, out.sample_rate, subtype="PCM_16")
    seconds = len(out.audio) / out.sample_rate
    print(f"wrote {seconds:.2f} s of audio to {args.output} in {time.perf_counter() - started:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
