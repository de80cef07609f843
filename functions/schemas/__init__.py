"""Wire schemas: the pydantic models the HTTP edge validates requests into and describes
its answers with (the OpenAPI document). One module per area; the domain in `shared/`
never imports them."""
