//! The IR: graph, op catalogue, validation, serialization and graph passes.
pub mod dim;
pub mod graph;
pub mod narrow;
pub mod ops;
pub mod passes;
pub mod serialize;
pub mod types;
pub mod validate;

pub use graph::{Graph, Node, TensorRef};
pub use types::{AttrKind, AttrValue, DType, Shape, TensorType};

/// Version of mmdnn's IR conventions written into `GraphDef.ir_version`. Version 0 (absent)
/// marks an IR written by Microsoft MMdnn 0.3.1, whose conventions the `mmdnn` frontend maps.
pub const IR_VERSION: i32 = 1;
