"""Certificate signing keys: the Signer protocol and its software and PKCS#11 backends.

Imports nothing of the rest of the project."""
