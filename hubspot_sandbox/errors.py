"""HubSpot-style error JSON (hubspot-api.md section 7)."""

from __future__ import annotations

import uuid

from flask import jsonify


class ApiError(Exception):
    """An error answered to the client as HubSpot's error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        category: str = "VALIDATION_ERROR",
        sub_category: str | None = None,
        context: dict | None = None,
        headers: dict | None = None,
        extra: dict | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.category = category
        self.sub_category = sub_category
        self.context = context
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict:
        """Return the JSON body of this error."""
        body = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
        }
        if self.category:
            body["category"] = self.category
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context:
            body["context"] = self.context
        body.update(self.extra)
        return body

    def response(self):
        """Return a Flask response for this error."""
        resp = jsonify(self.body())
        resp.status_code = self.status
        for key, value in self.headers.items():
            resp.headers[key] = value
        return resp


def validation_error(message: str, field: str | None = None) -> ApiError:
    """A 400 VALIDATION_ERROR, optionally naming the offending field."""
    context = {"field": [field]} if field else None
    return ApiError(400, message, "VALIDATION_ERROR", context=context)
