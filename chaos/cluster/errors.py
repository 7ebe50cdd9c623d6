"""API errors as values that become Kubernetes `Status` bodies at the HTTP edge."""

from __future__ import annotations

import json
from dataclasses import dataclass

from chaos.cluster import resources

_REASONS = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    504: "Timeout",
}


class ApiError(Exception):
    """A request the API refuses; `status()` is the body a real apiserver would send."""

    def __init__(self, code: int, message: str, *, reason: str | None = None,
                 details: dict | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.details = details

    def status(self) -> dict:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(404, f'{qualified} "{name}" not found',
                    details={"name": name, "group": group, "kind": resource})


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(409, f'{qualified} "{name}" already exists', reason="AlreadyExists",
                    details={"name": name, "group": group, "kind": resource})


def conflict(resource: str, name: str, group: str = "") -> ApiError:
    qualified = f"{resource}.{group}" if group else resource
    return ApiError(
        409,
        f'Operation cannot be fulfilled on {qualified} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        details={"name": name, "group": group, "kind": resource})


def _group_of(kind: str) -> str:
    try:
        return resources.by_kind(kind).group
    except KeyError:  # the subresource and options kinds (ListOptions, CreateOptions, ...)
        return "meta.k8s.io" if kind.endswith("Options") else {"Scale": "autoscaling"}.get(
            kind, "")


def _go_value(value) -> str:
    """A value as upstream's field.Invalid prints it: strings quoted, nil as null."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):  # Go's %#v
        return "[]string{" + ", ".join(json.dumps(v) for v in value) + "}"
    return json.dumps(value) if value is None or isinstance(value, (bool, dict, list)) \
        else str(value)


@dataclass(frozen=True)
class FieldError:
    """One upstream field.Error: its type (the Status cause's reason), path and body."""

    type: str
    field: str
    detail: str

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}"


def field_invalid(field: str, value, rule: str) -> FieldError:
    """field.Invalid, or field.Required for the rule "Required value"."""
    if rule == "Required value":
        return field_required(field)
    return FieldError("FieldValueInvalid", field, f"Invalid value: {_go_value(value)}: {rule}")


def field_required(field: str, detail: str = "") -> FieldError:
    """field.Required: `Required value`, then `: detail` when there is one."""
    return FieldError("FieldValueRequired", field,
                      f"Required value: {detail}" if detail else "Required value")


def field_forbidden(field: str, rule: str) -> FieldError:
    return FieldError("FieldValueForbidden", field, f"Forbidden: {rule}")


def field_not_supported(field: str, value, supported: list[str]) -> FieldError:
    quoted = ", ".join(json.dumps(s) for s in supported)
    return FieldError("FieldValueNotSupported", field,
                      f"Unsupported value: {_go_value(value)}: supported values: {quoted}")


def invalid_object(kind: str, name: str, errs: list[FieldError]) -> ApiError:
    """Upstream's NewInvalid over a non-empty ErrorList: 422 Invalid,
    `Kind.group "name" is invalid: <aggregate>`, one cause per error (its body alone). The
    aggregate is ErrorList.ToAggregate's: the distinct messages in order, bracketed and
    comma-separated when there are several, bare when there is one."""
    group = _group_of(kind)
    qualified = f"{kind}.{group}" if group else kind
    messages = list(dict.fromkeys(str(e) for e in errs))
    aggregate = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
    return ApiError(
        422, f'{qualified} "{name}" is invalid: {aggregate}',
        details={"name": name, "group": group, "kind": kind,
                 "causes": [{"reason": e.type, "message": e.detail, "field": e.field}
                            for e in errs]})


def invalid(kind: str, name: str, field: str, value, rule: str) -> ApiError:
    return invalid_object(kind, name, [field_invalid(field, value, rule)])


def forbidden(kind: str, name: str, field: str, rule: str) -> ApiError:
    return invalid_object(kind, name, [field_forbidden(field, rule)])


def not_supported(kind: str, name: str, field: str, value, supported: list[str]) -> ApiError:
    return invalid_object(kind, name, [field_not_supported(field, value, supported)])


def too_large_resource_version(wanted: int, current: int) -> ApiError:
    """Upstream's NewTooLargeResourceVersionError: a read asked for a revision not reached yet."""
    return ApiError(504, f"Timeout: Too large resource version: {wanted}, current: {current}",
                    reason="Timeout",
                    details={"causes": [{"reason": "ResourceVersionTooLarge",
                                         "message": "Too large resource version"}],
                             "retryAfterSeconds": 1})


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def success_status(name: str, kind: str, group: str = "", uid: str | None = None) -> dict:
    """The `Status{status: Success}` a real apiserver returns for some deletes."""
    details = {"name": name, "group": group, "kind": kind}
    if uid:
        details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}
