//! Helpers shared by several integration tests (`mod common;` in each): IR graphs holding a
//! constant of a narrow element type (4-bit integers, float8), for the writers' handling of them.
use mmdnn::ir::{AttrValue, DType, Graph, Node, TensorRef};
use mmdnn::weights::{MemoryWeights, Tensor};

/// x [3] + Cast(Constant `w` of `dtype` holding `bytes`, float32), the Add named `sum`; the graph
/// has no outputs yet. Returns the graph, its weights and the Add's output.
pub fn narrow_constant_add(
    dtype: DType,
    bytes: Vec<u8>,
    sum: &str,
) -> (Graph, MemoryWeights, TensorRef) {
    let mut g = Graph::default();
    let mut w = MemoryWeights::default();
    let x = g
        .add(
            Node::new("x", "DataInput")
                .with_attr("dtype", AttrValue::Type(DType::F32))
                .with_attr("shape", AttrValue::Shape(vec![3])),
        )
        .unwrap();
    g.inputs.push("x".into());
    let c = g
        .add(
            Node::new("w", "Constant")
                .with_attr("dtype", AttrValue::Type(dtype))
                .with_attr("shape", AttrValue::Shape(vec![3])),
        )
        .unwrap();
    w.insert("w", "value", Tensor::new(dtype, vec![3], bytes).unwrap());
    let f = g
        .add(
            Node::new("wf", "Cast")
                .with_inputs([c])
                .with_attr("to", AttrValue::Type(DType::F32)),
        )
        .unwrap();
    let s = g.add(Node::new(sum, "Add").with_inputs([x, f])).unwrap();
    (g, w, s)
}
