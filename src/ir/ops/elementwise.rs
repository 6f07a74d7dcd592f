//! Elementwise binary ops with NumPy broadcasting, comparisons and selection.
use super::shape_rules::{broadcast_bool, broadcast_inputs};
use super::*;
use crate::ir::types::AttrKind as K;

const fn binary(name: &'static str, doc: &'static str) -> OpDef {
    OpDef {
        name,
        family: Family::Elementwise,
        doc,
        inputs: inputs(&["a", "b"]),
        outputs: ONE_OUTPUT,
        attrs: &[],
        weights: &[],
        layout: Layout::Elementwise { mask: false },
        infer: broadcast_inputs,
    }
}

const fn compare(name: &'static str, doc: &'static str) -> OpDef {
    OpDef {
        layout: Layout::Elementwise { mask: true },
        infer: broadcast_bool,
        ..binary(name, doc)
    }
}

pub const OPS: &[OpDef] = &[
    binary("Add", "a + b"),
    binary("Sub", "a − b"),
    binary("Mul", "a · b"),
    binary("Div", "a / b (integer inputs: truncating)"),
    binary("Pow", "a raised to b"),
    OpDef {
        attrs: &[attr(
            "fmod",
            K::Int,
            Default::Int(0),
            "0: the remainder takes the divisor's sign (a − floor(a/b)·b); 1: the dividend's \
             (C fmod, a − trunc(a/b)·b)",
        )],
        ..binary(
            "Mod",
            "remainder of a / b, integers (by zero: an error) and floats",
        )
    },
    binary("Maximum", "elementwise max"),
    binary("Minimum", "elementwise min"),
    compare("Equal", "a == b"),
    compare("Greater", "a > b"),
    compare("GreaterOrEqual", "a ≥ b"),
    compare("Less", "a < b"),
    compare("LessOrEqual", "a ≤ b"),
    compare("And", "logical and of bool tensors"),
    compare("Or", "logical or of bool tensors"),
    compare("Xor", "logical xor of bool tensors"),
    OpDef {
        name: "Where",
        family: Family::Elementwise,
        doc: "x where cond else y, all three broadcast",
        inputs: inputs(&["cond", "x", "y"]),
        outputs: ONE_OUTPUT,
        attrs: &[],
        weights: &[],
        layout: Layout::Elementwise { mask: false },
        infer: infer_where,
    },
];

fn infer_where(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let (c, x, y) = (ctx.input(0)?, ctx.input(1)?, ctx.input(2)?);
    let shape = shape_rules::broadcast(&shape_rules::broadcast(&c.shape, &x.shape)?, &y.shape)?;
    Ok(vec![TensorType::new(x.dtype, shape)])
}
