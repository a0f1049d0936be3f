"""Configuration: feeds.yaml (and OPML) read into a typed `Config`; no database."""
