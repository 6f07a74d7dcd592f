//! Elementwise binary ops, comparisons, logic and Where: each is one ONNX op with the same
//! broadcasting rules.
use super::Lower;
use crate::backends::onnx::builder::Ctx;
use anyhow::Result;

/// IR op → ONNX op.
const OPS: &[(&str, &str)] = &[
    ("Add", "Add"),
    ("Sub", "Sub"),
    ("Mul", "Mul"),
    ("Div", "Div"),
    ("Pow", "Pow"),
    ("Maximum", "Max"),
    ("Minimum", "Min"),
    ("Equal", "Equal"),
    ("Greater", "Greater"),
    ("GreaterOrEqual", "GreaterOrEqual"),
    ("Less", "Less"),
    ("LessOrEqual", "LessOrEqual"),
    ("And", "And"),
    ("Or", "Or"),
    ("Xor", "Xor"),
    ("Where", "Where"),
];

pub fn find(op: &str) -> Option<Lower> {
    OPS.iter().any(|(o, _)| *o == op).then_some(lower as Lower)
}

fn lower(c: &mut Ctx) -> Result<()> {
    let (_, onnx) = OPS
        .iter()
        .find(|(o, _)| *o == c.node.op)
        .expect("found by find()");
    let inputs = (0..c.node.inputs.len())
        .map(|i| c.x(i))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    c.last(onnx, &refs, vec![])
}
