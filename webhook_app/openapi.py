"""The OpenAPI 3.1 document of the app, generated from the pydantic models the views validate with.

A view takes part by wearing `@documented(...)`; the generator walks the app's URL map, so every blueprint's
routes appear without a list to keep in step. Served at `GET /openapi.json`.
"""

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Blueprint, Flask, current_app, jsonify
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

View = TypeVar("View", bound=Callable[..., Any])

OPENAPI_VERSION = "3.1.0"
SCHEMA_REF = "#/components/schemas/{model}"
_PATH_PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")

ERROR_DESCRIPTIONS = {
    400: "Malformed request (invalid JSON, a body that cannot be read whole, bad signature)",
    401: "Missing or invalid credential",
    404: "Unknown, or not visible to this credential (the same answer either way)",
    403: "Cross-origin request refused",
    413: "Body larger than the server accepts",
    415: "Content-Type is not application/json",
    422: "The body does not match the schema or holds a value the warehouse cannot store; `fields` names each problem",
    429: "Rate limit exceeded; see Retry-After and RateLimit-* headers",
    503: "Endpoint disabled (its secret is unset), or the landing zone or a dependency is unavailable; retry later",
}


class FieldProblem(BaseModel):
    model_config = ConfigDict(defer_build=True)

    field: str
    problem: str


class ErrorBody(BaseModel):
    """Every error the app returns."""

    model_config = ConfigDict(defer_build=True)

    error: str = Field(description="Stable machine-readable code, e.g. `validation_failed`.")
    detail: str
    fields: list[FieldProblem]


@dataclass(frozen=True)
class Credential:
    """A security scheme: its name in the document and its OpenAPI definition."""

    name: str
    scheme: Mapping[str, Any]


@dataclass(frozen=True)
class Operation:
    summary: str
    responses: Mapping[int, tuple[str, type[BaseModel] | None]]
    body: type[BaseModel] | None = None
    credential: Credential | tuple[Credential, ...] | None = None
    errors: tuple[int, ...] = ()
    description: str = ""
    tags: tuple[str, ...] = ()


def documented(
    *,
    summary: str,
    responses: Mapping[int, tuple[str, type[BaseModel] | None]],
    body: type[BaseModel] | None = None,
    credential: Credential | tuple[Credential, ...] | None = None,
    errors: tuple[int, ...] = (),
    description: str = "",
    tags: tuple[str, ...] = (),
) -> Callable[[View], View]:
    """Describe a view for the OpenAPI document; `errors` lists the error statuses it answers with, `credential` the
    scheme it needs, or the schemes of which any one will do."""
    operation = Operation(summary, responses, body, credential, errors, description, tags)

    def decorate(view: View) -> View:
        view.openapi_operation = operation  # type: ignore[attr-defined]
        return view

    return decorate


def build_document(app: Flask, *, title: str, version: str) -> dict[str, Any]:
    routes = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        operation = getattr(app.view_functions.get(rule.endpoint), "openapi_operation", None)
        if operation is not None:
            methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
            routes.extend((_PATH_PARAMETER.sub(r"{\1}", rule.rule), method.lower(), operation) for method in methods)

    models: list[tuple[type[BaseModel], str]] = [(ErrorBody, "serialization")]
    for _, _, operation in routes:
        if operation.body is not None:
            models.append((operation.body, "validation"))
        models += [(model, "serialization") for _, model in operation.responses.values() if model is not None]
    refs, definitions = models_json_schema(list(dict.fromkeys(models)), ref_template=SCHEMA_REF)

    paths: dict[str, dict[str, Any]] = {}
    schemes: dict[str, Mapping[str, Any]] = {}
    for path, method, operation in routes:
        entry: dict[str, Any] = {"summary": operation.summary, "operationId": f"{method}_{_slug(path)}"}
        if operation.description:
            entry["description"] = operation.description
        if operation.tags:
            entry["tags"] = list(operation.tags)
        if operation.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(operation.body, "validation")]}},
            }
        responses: dict[str, Any] = {}
        for status, (description, model) in sorted(operation.responses.items()):
            responses[str(status)] = {"description": description}
            if model is not None:
                responses[str(status)]["content"] = {"application/json": {"schema": refs[(model, "serialization")]}}
        for status in sorted(operation.errors):
            responses[str(status)] = {
                "description": ERROR_DESCRIPTIONS.get(status, "Error"),
                "content": {"application/json": {"schema": refs[(ErrorBody, "serialization")]}},
            }
        entry["responses"] = responses
        credentials = operation.credential if isinstance(operation.credential, tuple) else (operation.credential,)
        if operation.credential is not None:
            schemes.update((credential.name, credential.scheme) for credential in credentials)
            entry["security"] = [{credential.name: []} for credential in credentials]
        paths.setdefault(path, {})[method] = entry

    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {}), "securitySchemes": schemes},
    }


def _slug(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"


bp = Blueprint("openapi", __name__)


@bp.get("/openapi.json")
def openapi_json():
    document = current_app.extensions.get("openapi")
    if document is None:
        document = current_app.extensions["openapi"] = build_document(
            current_app, title="Ingest webhook app", version="1"
        )
    return jsonify(document)
