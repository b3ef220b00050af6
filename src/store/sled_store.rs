//! sled store (stub until implemented).
/// Placeholder.
pub struct SledStore;
/// Placeholder.
pub struct SledOptions;
