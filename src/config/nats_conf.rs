//! Placeholder until the NATS config parser lands (being written now).
