"""The intake baseline: a Flask handler that only parses the body and fsyncs it to a file, nothing else."""

import json
import os
import uuid

from flask import Flask, request


def create_app() -> Flask:
    app = Flask(__name__)
    directory = os.environ["BENCH_BARE_DIR"]
    os.makedirs(directory, exist_ok=True)

    @app.get("/health")
    def health():
        return {"status": "ok"}

    # Any POST path, so a benchmark posts to the baseline exactly as it posts to the platform's route.
    @app.post("/<path:_route>")
    def ingest(_route: str):
        body = request.get_data()
        count = len(json.loads(body).get("events", []))
        fd = os.open(os.path.join(directory, uuid.uuid4().hex), os.O_WRONLY | os.O_CREAT, 0o640)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        return {"accepted": count}, 202

    return app
