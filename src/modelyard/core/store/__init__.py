"""The metadata store: schema, engines and migrations."""
