"""The recorder's pipeline: capture → chunk → compress → encrypt → store."""
