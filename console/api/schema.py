"""The error responses every API operation can give, in the OpenAPI schema.

drf-spectacular documents what a view returns when it succeeds; DRF's own
layers answer the rest the same way everywhere: 401 without valid
credentials, 403 when the role may not, 404 for an object not visible to the
user (or a page past the end), 400 with per-field messages for bad input, 415
for a body in a media type no parser reads (or none named), 429 from the
throttles. This hook adds them where a view did not describe them
itself, so clients (and schemathesis' conformance checks) know every answer.
"""

ERROR = {
    "type": "object",
    "description": "What went wrong, in the request's language",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
FIELD_ERRORS = {
    "type": "object",
    "description": "Messages per field (`non_field_errors` for the request as a whole), "
                   "or a `detail` for a body that could not be read",
    "additionalProperties": {"anyOf": [{"type": "array"}, {"type": "object"},
                                       {"type": "string"}]},
}
METHODS = ("get", "put", "post", "patch", "delete")


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _response(description: str, schema: str, headers: dict | None = None) -> dict:
    response = {"description": description,
                "content": {"application/json": {"schema": _ref(schema)}}}
    if headers:
        response["headers"] = headers
    return response


def document_error_responses(result, generator, request, public):
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("FieldErrors", FIELD_ERRORS)
    retry_after = {"Retry-After": {"schema": {"type": "integer"},
                                   "description": "Seconds to wait"}}
    for path_item in result.get("paths", {}).values():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            in_path = any(p.get("in") == "path" for p in parameters)
            in_query = any(p.get("in") == "query" for p in parameters)
            paged = any(p.get("in") == "query" and p.get("name") in ("page", "cursor")
                        for p in parameters)
            if "requestBody" in operation or in_query:
                responses.setdefault("400", _response("Invalid input: messages per field",
                                                      "FieldErrors"))
            if "requestBody" in operation:
                responses.setdefault("415", _response(
                    "The body's media type is not one the API reads (JSON, form, multipart)",
                    "Error"))
            responses.setdefault("401", _response("No valid credentials (a missing, unknown, "
                                                  "expired or revoked token)", "Error"))
            responses.setdefault("403", _response("The user's role may not do this", "Error"))
            if in_path or paged:
                responses.setdefault("404", _response(
                    "No such object visible to this user, or no such page", "Error"))
            responses.setdefault("429", _response("Throttled: wait Retry-After seconds",
                                                  "Error", retry_after))
    return result
