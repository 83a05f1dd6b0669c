"""Turn a request body into a validated pydantic model, or a precise 4xx."""

from typing import TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from webhook_app.errors import ApiError, validation_fields

Model = TypeVar("Model", bound=BaseModel)


def json_body(model: type[Model]) -> Model:
    require_json_content_type()
    # Reading the body enforces MAX_CONTENT_LENGTH: a larger body raises 413 before it is buffered.
    return parse_json(model, request.get_data(cache=False))


def require_json_content_type() -> None:
    if request.mimetype != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"Content-Type must be application/json, got {request.mimetype or 'none'!r}.",
        )


def parse_json(model: type[Model], body: bytes) -> Model:
    """`body` validated as `model`: 400 when it is not JSON, 422 naming each field that does not fit."""
    try:
        return model.model_validate_json(body)
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)
        if any(problem["type"] == "json_invalid" for problem in problems):
            raise ApiError(400, "malformed_json", f"The body is not valid JSON: {problems[0]['msg']}.") from None
        raise ApiError(
            422, "validation_failed", "The body does not match the schema.", validation_fields(error)
        ) from None
