"""The e2ee client: a pure crypto/protocol core and an I/O shell (api, keystore, cli)."""

__version__ = "0.1.0"
