"""OpenStack API microversion negotiation (Nova, Cinder, Manila, Placement).

A client asks for a behaviour version with ``OpenStack-API-Version:
compute 2.79``; the service answers in that version and echoes it back, so
old clients keep working while the API evolves. This module reproduces what
Nova does with ``microversion_parse`` and ``APIVersionRequest``:

* the header may name several services (``compute 2.5, volume 3.2``) and may
  be repeated; the service type is matched case-insensitively and the last
  entry for it wins;
* when the standard header has no entry for the service, a legacy header
  (``X-OpenStack-Nova-API-Version: 2.5``) is consulted if the service has one;
* no version requested means the minimum, ``latest`` means the maximum;
* a malformed version is a 400 and one outside the supported range a 406,
  with Nova's messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kumo.core.errors import BadRequest, NotAcceptable

#: The standard header, as defined by the API-SIG microversion guideline.
STANDARD_HEADER = "OpenStack-API-Version"

# Nova's APIVersionRequest format: no leading zeros, major at least 1.
_VERSION_RE = re.compile(r"^([1-9]\d*)\.([1-9]\d*|0)$")


@dataclass(frozen=True, order=True)
class APIVersion:
    """A ``major.minor`` API version; ordering compares major, then minor.

    ``APIVersion(0, 0)`` is the "null" version Nova uses for an unbounded
    end of a range.
    """

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> APIVersion:
        """Parse ``"2.1"``; raise ``ValueError`` for ``"2"``, ``"2.01x"``, ``"-2.1"``..."""
        match = _VERSION_RE.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"invalid API version string {text!r}, expected MajorNum.MinorNum")
        return cls(int(match.group(1)), int(match.group(2)))

    @property
    def is_null(self) -> bool:
        """True for ``0.0``, the version meaning "no bound"."""
        return self.major == 0 and self.minor == 0

    def matches(self, min_version: APIVersion, max_version: APIVersion) -> bool:
        """Inclusive range test where a null bound is open, as Nova's ``matches``."""
        if not min_version.is_null and self < min_version:
            return False
        return max_version.is_null or self <= max_version

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


NULL_VERSION = APIVersion(0, 0)


def _header_values(headers: Mapping[str, str], name: str) -> str | None:
    """All occurrences of ``name`` (case-insensitive), folded with commas like HTTP does.

    ``items()`` of a Starlette ``Headers`` yields repeated headers separately,
    so a header sent twice is seen in full.
    """
    wanted = name.lower()
    values = [str(v) for k, v in headers.items() if k.lower() == wanted]
    return ",".join(values) if values else None


def requested_version(headers: Mapping[str, str], service_type: str, legacy_header: str | None = None) -> str | None:
    """The raw version string the client asked for, or None when it asked for none."""
    standard = _header_values(headers, STANDARD_HEADER)
    if standard is not None:
        for entry in reversed(standard.split(",")):
            parts = entry.strip().split(None, 1)
            if len(parts) == 2 and parts[0].lower() == service_type.lower():
                return parts[1].strip()
    if legacy_header:
        legacy = _header_values(headers, legacy_header)
        if legacy is not None:
            value = legacy.split(",")[-1].strip()
            return value or None
    return None


def negotiate(
    headers: Mapping[str, str],
    service_type: str,
    min_version: APIVersion,
    max_version: APIVersion,
    legacy_header: str | None = None,
) -> APIVersion:
    """The version to serve this request at.

    Raises ``BadRequest`` (400) for a malformed version and ``NotAcceptable``
    (406) for one outside ``[min_version, max_version]``, with Nova's wording.
    """
    text = requested_version(headers, service_type, legacy_header)
    if text is None:
        return min_version
    if text.lower() == "latest":
        return max_version
    try:
        version = APIVersion.parse(text)
    except ValueError:
        raise BadRequest(
            f"API Version String {text} is of invalid format. Must be of format MajorNum.MinorNum."
        ) from None
    if not min_version <= version <= max_version:
        raise NotAcceptable(
            f"Version {version} is not supported by the API. "
            f"Minimum is {min_version} and maximum is {max_version}."
        )
    return version


def response_headers(service_type: str, version: APIVersion, legacy_header: str | None = None) -> dict[str, str]:
    """Headers echoing the served version, with ``Vary`` so caches key on them (as Nova)."""
    headers = {STANDARD_HEADER: f"{service_type} {version}"}
    vary = [STANDARD_HEADER]
    if legacy_header:
        headers[legacy_header] = str(version)
        vary.append(legacy_header)
    headers["Vary"] = ", ".join(vary)
    return headers
