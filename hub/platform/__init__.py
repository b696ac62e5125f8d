"""The platform under every capability: config, credentials, logs, metrics, the database (engine,
sessions, upsert, the shared schema), mappings files, rate limits, and the connector registry and
instances. It imports no capability and not the job queue."""
