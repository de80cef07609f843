"""The two kinds of wire model: request bodies (unknown fields are refused, camelCase on the
wire) and response payloads (for the OpenAPI document).

Their validators are built on first use, not at import: an instance imports every model
but serves a few endpoints, and building them all at import was a tenth of the app's
import time."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class Body(BaseModel):
    model_config = ConfigDict(
        extra="forbid", alias_generator=to_camel, populate_by_name=False, frozen=True, defer_build=True
    )


class Payload(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, defer_build=True)
