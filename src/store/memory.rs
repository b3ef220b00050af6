//! In-memory store (stub until implemented).
/// Placeholder.
pub struct MemoryStore;
