"""The User schemas (RFC 7643 sections 4.1, 4.3 and 8.7) as data.

One attribute model serves the /Schemas document, input validation, filter and PATCH path
resolution, and ``attributes``/``excludedAttributes``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GATEWAY_USER = "urn:scim-gateway:params:scim:schemas:extension:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

# userName, a work email, externalId, a group's displayName: counted as sent and case-folded.
IDENTIFIER_MAX = 256


def _by_name(attributes: tuple[Attribute, ...]) -> dict[str, Attribute]:
    """Attributes by lower-cased name, the first one where two names differ only in case."""
    index: dict[str, Attribute] = {}
    for attribute in attributes:
        index.setdefault(attribute.name.lower(), attribute)
    return index


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    type: str = "string"  # string boolean decimal integer dateTime reference complex binary
    multi_valued: bool = False
    required: bool = False
    case_exact: bool = False
    mutability: str = "readWrite"  # readOnly readWrite immutable writeOnly
    returned: str = "default"  # always never default request
    uniqueness: str = "none"
    description: str = ""
    sub_attributes: tuple[Attribute, ...] = ()
    canonical_values: tuple[str, ...] = ()
    reference_types: tuple[str, ...] = ()
    max_length: int | None = None  # characters; None means bounds.TEXT_MAX
    # Sub-attributes by lower-cased name: every incoming value looks its keys up here.
    _subs: dict[str, Attribute] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_subs", _by_name(self.sub_attributes))

    def sub(self, name: str) -> Attribute | None:
        return self._subs.get(name.lower())

    def document(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "name": self.name,
            "type": self.type,
            "multiValued": self.multi_valued,
            "description": self._description(),
            "required": self.required,
            "caseExact": self.case_exact,
            "mutability": self.mutability,
            "returned": self.returned,
            "uniqueness": self.uniqueness,
        }
        if self.sub_attributes:
            doc["subAttributes"] = [a.document() for a in self.sub_attributes]
        if self.canonical_values:
            doc["canonicalValues"] = list(self.canonical_values)
        if self.reference_types:
            doc["referenceTypes"] = list(self.reference_types)
        return doc

    def _description(self) -> str:
        # RFC 7643 has no length characteristic; a limit is stated where clients read it.
        text = self.description or self.name
        if self.max_length is not None:
            folded = "" if self.case_exact else ", as sent and once case-folded"
            text += f" At most {self.max_length} characters{folded}."
        return text


@dataclass(frozen=True, slots=True)
class Schema:
    id: str
    name: str
    description: str
    attributes: tuple[Attribute, ...] = field(default=())
    _attributes: dict[str, Attribute] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_attributes", _by_name(self.attributes))

    def attribute(self, name: str) -> Attribute | None:
        return self._attributes.get(name.lower())

    def document(self, base_url: str) -> dict[str, object]:
        return {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "attributes": [a.document() for a in self.attributes],
            "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{self.id}"},
        }


def _multi(name: str, *, value_type: str = "string", types: tuple[str, ...] = (),
           extra: tuple[Attribute, ...] = (), reference_types: tuple[str, ...] = (),
           value_max_length: int | None = None) -> Attribute:
    return Attribute(
        name,
        "complex",
        multi_valued=True,
        sub_attributes=(
            Attribute("value", value_type, reference_types=reference_types, max_length=value_max_length),
            Attribute("display"),
            Attribute("type", canonical_values=types),
            Attribute("primary", "boolean"),
            *extra,
        ),
    )


_NAME = Attribute(
    "name",
    "complex",
    sub_attributes=tuple(
        Attribute(n) for n in ("formatted", "familyName", "givenName", "middleName",
                               "honorificPrefix", "honorificSuffix")
    ),
)

_ADDRESS = Attribute(
    "addresses",
    "complex",
    multi_valued=True,
    sub_attributes=(
        *(Attribute(n) for n in ("formatted", "streetAddress", "locality", "region",
                                 "postalCode", "country")),
        Attribute("type", canonical_values=("work", "home", "other")),
        Attribute("primary", "boolean"),
    ),
)

_GROUPS = Attribute(
    "groups",
    "complex",
    multi_valued=True,
    mutability="readOnly",
    sub_attributes=(
        Attribute("value", mutability="readOnly"),
        Attribute("$ref", "reference", mutability="readOnly", reference_types=("Group",)),
        Attribute("display", mutability="readOnly"),
        Attribute("type", mutability="readOnly", canonical_values=("direct", "indirect")),
    ),
)

USER_SCHEMA = Schema(
    CORE_USER,
    "User",
    "User Account",
    (
        Attribute("userName", required=True, uniqueness="server", max_length=IDENTIFIER_MAX),
        _NAME,
        Attribute("displayName"),
        Attribute("nickName"),
        Attribute("profileUrl", "reference", reference_types=("external",)),
        Attribute("title"),
        Attribute("userType"),
        Attribute("preferredLanguage"),
        Attribute("locale"),
        Attribute("timezone"),
        Attribute("active", "boolean"),
        _multi("emails", types=("work", "home", "other"), value_max_length=IDENTIFIER_MAX),
        _multi("phoneNumbers", types=("work", "home", "mobile", "fax", "pager", "other")),
        _multi("ims", types=("aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo")),
        _multi("photos", value_type="reference", types=("photo", "thumbnail"),
               reference_types=("external",)),
        _ADDRESS,
        _GROUPS,
        _multi("entitlements"),
        _multi("roles"),
        _multi("x509Certificates", value_type="binary"),
    ),
)

ENTERPRISE_SCHEMA = Schema(
    ENTERPRISE_USER,
    "EnterpriseUser",
    "Enterprise User",
    (
        Attribute("employeeNumber"),
        Attribute("costCenter"),
        Attribute("organization"),
        Attribute("division"),
        Attribute("department"),
        Attribute(
            "manager",
            "complex",
            sub_attributes=(
                Attribute("value"),
                Attribute("$ref", "reference", reference_types=("User",)),
                Attribute("displayName", mutability="readOnly"),
            ),
        ),
    ),
)

GATEWAY_SCHEMA = Schema(
    GATEWAY_USER,
    "GatewayUser",
    "What the portal decides for a provisioned account; read-only through SCIM",
    (
        Attribute("loginMethod", mutability="readOnly", canonical_values=("sso", "credentials")),
        Attribute("permissionProfile", mutability="readOnly"),
    ),
)

# Attributes every resource has (RFC 7643 section 3.1), outside any schema's list.
ID = Attribute("id", case_exact=True, mutability="readOnly", returned="always",
               uniqueness="server")
EXTERNAL_ID = Attribute("externalId", case_exact=True, max_length=IDENTIFIER_MAX)
META = Attribute(
    "meta",
    "complex",
    mutability="readOnly",
    sub_attributes=(
        Attribute("resourceType", mutability="readOnly"),
        Attribute("created", "dateTime", mutability="readOnly"),
        Attribute("lastModified", "dateTime", mutability="readOnly"),
        Attribute("location", "reference", mutability="readOnly"),
        Attribute("version", case_exact=True, mutability="readOnly"),
    ),
)

USER_SCHEMAS = (USER_SCHEMA, ENTERPRISE_SCHEMA, GATEWAY_SCHEMA)

CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
GROUP_SCHEMA = Schema(
    CORE_GROUP,
    "Group",
    "Group",
    (
        Attribute("displayName", required=True, max_length=IDENTIFIER_MAX),
        Attribute(
            "members",
            "complex",
            multi_valued=True,
            sub_attributes=(
                Attribute("value", mutability="immutable"),
                Attribute("$ref", "reference", mutability="immutable", reference_types=("User",)),
                Attribute("display", mutability="readOnly"),
                Attribute("type", mutability="immutable", canonical_values=("User",)),
            ),
        ),
    ),
)
EXTENSIONS = {s.id.lower(): s for s in (ENTERPRISE_SCHEMA, GATEWAY_SCHEMA)}


@dataclass(frozen=True, slots=True)
class ResolvedPath:
    """An attribute path resolved against the schemas, with canonical names."""

    schema: Schema
    attribute: Attribute
    sub_attribute: Attribute | None = None

    @property
    def extension(self) -> str | None:
        return None if self.schema is USER_SCHEMA else self.schema.id

    @property
    def dotted(self) -> str:
        """The name used in events and policy: ``name.givenName``, ``urn:...:User:department``."""
        head = self.attribute.name if self.extension is None else f"{self.extension}:{self.attribute.name}"
        return f"{head}.{self.sub_attribute.name}" if self.sub_attribute else head


def resolve(path: str, sub_attribute: str | None = None) -> ResolvedPath | None:
    """Resolve ``userName``, ``name.givenName``, ``urn:...:User:department`` and the like."""
    schema = USER_SCHEMA
    text = path
    lowered = path.lower()
    for extension_id, extension in (*EXTENSIONS.items(), (CORE_USER.lower(), USER_SCHEMA)):
        if lowered.startswith(extension_id + ":"):
            schema = extension
            text = path[len(extension_id) + 1:]
            break
    name, _, sub = text.partition(".")
    if sub and sub_attribute:
        return None
    sub = sub or sub_attribute or ""
    if schema is USER_SCHEMA and name.lower() in ("id", "externalid", "meta"):
        attribute = {"id": ID, "externalid": EXTERNAL_ID, "meta": META}[name.lower()]
    else:
        found = schema.attribute(name)
        if found is None:
            return None
        attribute = found
    if not sub:
        return ResolvedPath(schema, attribute)
    sub_attr = attribute.sub(sub)
    if sub_attr is None:
        return None
    return ResolvedPath(schema, attribute, sub_attr)
