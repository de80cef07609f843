"""The project's own code: domain, storage and configuration. Never imports azure.functions."""
