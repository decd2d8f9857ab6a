"""Example WebSocket client for /v1/tts/ws: speaks a simulated LLM's tokens into out.pcm.

Run a server first (`xtts-server serve ...`), then `python examples/ws_client.py` (with
XTTS_API_KEY=<key> in the environment when the server has keys); play with
`ffplay -f s16le -ar 24000 -ch_layout mono out.pcm`. Protocol: docs/http-api.md."""

import asyncio
import json
import os

from websockets.asyncio.client import connect


async def llm_tokens():
    for token in [
        "Hello",
        "there!",
        "This",
        "audio",
        "starts",
        "before",
        "the",
        "text",
        "has",
        "finished.",
        "Bye.",
    ]:
        await asyncio.sleep(0.05)  # an LLM writing
        yield token + " "


async def main(url: str = "ws://localhost:8000/v1/tts/ws") -> None:
    key = os.environ.get("XTTS_API_KEY")
    async with connect(url, additional_headers={"Authorization": f"Bearer {key}"} if key else None) as ws:
        await ws.send(
            json.dumps({"type": "config", "voice": "Ana Florence", "language": "en", "format": "pcm"})
        )
        print(json.loads(await ws.recv()))  # {"type": "ready"}

        async def write() -> None:
            async for token in llm_tokens():
                await ws.send(json.dumps({"type": "text", "context_id": "turn1", "text": token}))
            await ws.send(json.dumps({"type": "close", "context_id": "turn1"}))

        writer = asyncio.create_task(write())
        with open("out.pcm", "wb") as out:
            while True:
                event = json.loads(await ws.recv())
                if event["type"] == "chunk":
                    out.write(await ws.recv())  # the binary frame that follows
                elif event["type"] == "started":
                    print("speaking:", event["text"])
                elif event["type"] == "error":
                    print("error:", event)
                elif event["type"] == "done":
                    break
        await writer


if __name__ == "__main__":
    asyncio.run(main())
