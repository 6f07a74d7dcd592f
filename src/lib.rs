//! mmdnn: converts trained deep-learning models between frameworks through a validated IR.
//!
//! Data flows one way: a frontend (`frontends`) reads a model into an [`ir::Graph`] plus
//! weights (`weights`); passes (`ir::passes`) rewrite it; a backend (`backends`) writes the
//! target. The interpreter (`interp`) defines what each op means. See docs/ARCHITECTURE.md.
pub mod backends;
pub mod cli;
pub mod docs;
pub mod frontends;
pub mod interp;
pub mod ir;
pub mod output;
pub mod proto;
pub mod runners;
pub mod weights;
