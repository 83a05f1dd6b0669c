from datetime import UTC, datetime
from typing import Literal

from flask import Blueprint, jsonify
from pydantic import BaseModel, ConfigDict

from webhook_app.openapi import documented

bp = Blueprint("health", __name__)


class HealthStatus(BaseModel):
    model_config = ConfigDict(defer_build=True)

    status: Literal["ok"]
    time: str


@bp.get("/health")
@documented(summary="Liveness probe; open to anyone", responses={200: ("The app is up", HealthStatus)})
def health():
    return jsonify({"status": "ok", "time": datetime.now(UTC).isoformat()})
