//! Graph-to-graph rewrites.
