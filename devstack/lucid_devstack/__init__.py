"""Local stack for Lucid's tests and demo: real components on 127.0.0.1."""
