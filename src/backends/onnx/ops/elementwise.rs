//! Elementwise binary ops, comparisons, logic and Where: each is one ONNX op with the same
//! broadcasting rules (Mod on floats with the divisor's sign, which ONNX's Mod refuses, is
//! C fmod corrected by one divisor).
use super::Lower;
use crate::backends::onnx::builder::{Ctx, A};
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
    if op == "Mod" {
        return Some(modulo);
    }
    OPS.iter().any(|(o, _)| *o == op).then_some(lower as Lower)
}

/// Mod. ONNX allows fmod 0 on integers only; on floats the C remainder r = fmod(a, b) becomes
/// the divisor-signed one by adding b where r is nonzero and its sign differs from b's.
fn modulo(c: &mut Ctx) -> Result<()> {
    let fmod = c.a.int("fmod")?;
    let (a, b) = (c.x(0)?, c.x(1)?);
    let dtype = c.in_ty(0)?.dtype;
    if fmod == 1 || !dtype.is_float() {
        return c.last("Mod", &[&a, &b], vec![A::I("fmod", fmod)]);
    }
    let r = c.op("Mod", &[&a, &b], vec![A::I("fmod", 1)]);
    let zero = c.scalar("zero", dtype, 0.0)?;
    let is_zero = c.op("Equal", &[&r, &zero], vec![]);
    let nonzero = c.op("Not", &[&is_zero], vec![]);
    let r_neg = c.op("Less", &[&r, &zero], vec![]);
    let b_neg = c.op("Less", &[&b, &zero], vec![]);
    let differ = c.op("Xor", &[&r_neg, &b_neg], vec![]);
    let fix = c.op("And", &[&nonzero, &differ], vec![]);
    let moved = c.op("Add", &[&r, &b], vec![]);
    c.last("Where", &[&fix, &moved, &r], vec![])
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
