//! Graph-to-graph rewrites.
pub mod layout;
