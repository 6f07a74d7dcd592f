//! Graph inputs and constants.
use super::*;
use crate::ir::types::AttrKind as K;

pub const OPS: &[OpDef] = &[
    OpDef {
        name: "DataInput",
        family: Family::Io,
        doc: "A graph input: a tensor fed at run time. Unknown dims (usually the batch) are -1.",
        inputs: inputs(&[]),
        outputs: ONE_OUTPUT,
        attrs: &[
            attr("dtype", K::Type, Default::Required, "element type"),
            attr(
                "shape",
                K::Shape,
                Default::Required,
                "shape, -1 for unknown dims",
            ),
        ],
        weights: &[],
        layout: Layout::GraphInput,
        infer: declared_type,
    },
    OpDef {
        name: "Constant",
        family: Family::Io,
        doc: "A constant tensor, stored in the weight store.",
        inputs: inputs(&[]),
        outputs: ONE_OUTPUT,
        attrs: &[
            attr("dtype", K::Type, Default::Required, "element type"),
            attr("shape", K::Shape, Default::Required, "shape"),
        ],
        weights: &[weight(
            "value",
            "the constant, with the node's dtype and shape",
        )],
        layout: Layout::Constant,
        infer: declared_type,
    },
];

fn declared_type(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    Ok(vec![TensorType::new(
        ctx.attrs.dtype("dtype")?,
        ctx.attrs.ints("shape")?,
    )])
}
