"""The compute metadata service (Nova's ``nova-api-metadata``): content, config drive files and the HTTP API."""
