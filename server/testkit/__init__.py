"""A disposable stack for client developers' integration suites (`e2ee-stack serve --ephemeral`),
its pytest plugin, and fault injection — active only in ephemeral mode (E2EE_TESTKIT)."""
