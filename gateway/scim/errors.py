"""The one SCIM error type (RFC 7644 section 3.12), raised anywhere, rendered by one middleware."""

from __future__ import annotations

from domain.errors import Reason, Rejected

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        body = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            body["scimType"] = self.scim_type
        return body

    # RFC 7644 section 3.12, table 9, and the plain HTTP statuses it names.
    @classmethod
    def invalid_filter(cls, detail: str) -> ScimError:
        return cls(400, detail, "invalidFilter")

    @classmethod
    def too_many(cls, detail: str) -> ScimError:
        return cls(400, detail, "tooMany")

    @classmethod
    def uniqueness(cls, detail: str) -> ScimError:
        return cls(409, detail, "uniqueness")

    @classmethod
    def mutability(cls, detail: str) -> ScimError:
        return cls(400, detail, "mutability")

    @classmethod
    def invalid_syntax(cls, detail: str) -> ScimError:
        return cls(400, detail, "invalidSyntax")

    @classmethod
    def invalid_path(cls, detail: str) -> ScimError:
        return cls(400, detail, "invalidPath")

    @classmethod
    def no_target(cls, detail: str) -> ScimError:
        return cls(400, detail, "noTarget")

    @classmethod
    def invalid_value(cls, detail: str) -> ScimError:
        return cls(400, detail, "invalidValue")

    @classmethod
    def invalid_version(cls, detail: str) -> ScimError:
        return cls(400, detail, "invalidVers")

    @classmethod
    def sensitive(cls, detail: str) -> ScimError:
        return cls(403, detail, "sensitive")

    @classmethod
    def unauthorized(cls, detail: str) -> ScimError:
        return cls(401, detail, headers={"WWW-Authenticate": 'Bearer realm="scim"'})

    @classmethod
    def forbidden(cls, detail: str) -> ScimError:
        return cls(403, detail)

    @classmethod
    def not_found(cls, detail: str) -> ScimError:
        return cls(404, detail)

    @classmethod
    def method_not_allowed(cls, detail: str, allowed: str) -> ScimError:
        return cls(405, detail, headers={"Allow": allowed})

    @classmethod
    def precondition_failed(cls, detail: str) -> ScimError:
        return cls(412, detail)

    @classmethod
    def payload_too_large(cls, detail: str) -> ScimError:
        return cls(413, detail)

    @classmethod
    def unsupported_media_type(cls, detail: str) -> ScimError:
        return cls(415, detail)

    @classmethod
    def conflict(cls, detail: str) -> ScimError:
        return cls(409, detail)

    @classmethod
    def unavailable(cls, detail: str, retry_after: int = 1) -> ScimError:
        return cls(503, detail, headers={"Retry-After": str(retry_after)})

    @classmethod
    def internal(cls, request_id: str) -> ScimError:
        return cls(500, f"internal error; quote request id {request_id} when reporting it")

    @classmethod
    def from_rejected(cls, rejected: Rejected) -> ScimError:
        match rejected.reason:
            case Reason.INVALID_VALUE:
                return cls.invalid_value(rejected.detail)
            case Reason.MUTABILITY:
                return cls.mutability(rejected.detail)
            case Reason.UNIQUENESS:
                return cls.uniqueness(rejected.detail)
            case Reason.NOT_FOUND:
                return cls.not_found(rejected.detail)
            case Reason.CONFLICT:
                return cls.conflict(rejected.detail)
            case Reason.NO_TARGET:
                return cls.no_target(rejected.detail)
