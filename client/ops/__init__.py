"""Use-cases of the `e2ee` client: each takes a :class:`~client.ops.session.Session` and plain
values, returns plain values or dataclasses, and raises from :mod:`client.errors`. Nothing here
prints or exits (that is :mod:`client.cli`); progress goes through an optional callback.

Modules: :mod:`.session` (account + keystore + server), :mod:`.identity` (login, init,
add-device, mnemonic, status), :mod:`.tree` (path resolution and verified metadata),
:mod:`.transaction` (lock, upload metadata, commit or abort), :mod:`.files` (encrypt, mkdir,
put, get, ls, rm, mv), :mod:`.share` (share, unshare, key rotation), :mod:`.keys` (safety
numbers), :mod:`.sync` (two-way sync), :mod:`.filedrop` (anonymous uploads).
"""
