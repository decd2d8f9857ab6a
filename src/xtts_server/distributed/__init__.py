"""The same server past one GPU: Ray Serve replicas of the unchanged FastAPI app, one engine each.

Only `deployment.py` imports Ray (the `ray` extra); the rest (capacity, options, ASGI helpers) is
plain Python, so the single-server path never imports Ray.
"""
