"""The notifier's SQL schema, engine and migrations."""
