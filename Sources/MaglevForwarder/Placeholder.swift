// The forwarder target; see docs/architecture.md.
