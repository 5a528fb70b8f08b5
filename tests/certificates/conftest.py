from tests.softhsm import softhsm  # noqa: F401 - the session's SoftHSM token
