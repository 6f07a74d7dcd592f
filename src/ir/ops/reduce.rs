//! Reductions over axes.
use super::shape_rules::norm_axis;
use super::*;
use crate::ir::types::AttrKind as K;

const AXES: AttrDef = attr(
    "axes",
    K::Ints,
    Default::Ints(&[]),
    "reduced axes (empty: all)",
)
.or_input(super::runtime_rules::reduce);
const KEEPDIMS: AttrDef = attr(
    "keepdims",
    K::Bool,
    Default::Bool(true),
    "keep reduced axes as 1",
);

const fn reduce(name: &'static str, doc: &'static str) -> OpDef {
    OpDef {
        name,
        family: Family::Reduce,
        doc,
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs: &[AXES, KEEPDIMS],
        weights: &[],
        layout: Layout::ReducedAxes,
        infer: infer_reduce,
    }
}

const ARG_ATTRS: &[AttrDef] = &[
    attr("axis", K::Int, Default::Int(0), "the axis searched"),
    KEEPDIMS,
    attr(
        "select_last_index",
        K::Bool,
        Default::Bool(false),
        "on ties, the last index",
    ),
];

const fn arg(name: &'static str, doc: &'static str) -> OpDef {
    OpDef {
        name,
        family: Family::Reduce,
        doc,
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs: ARG_ATTRS,
        weights: &[],
        layout: Layout::Axis(AxisRule::Reduced),
        infer: infer_arg,
    }
}

pub const OPS: &[OpDef] = &[
    reduce("ReduceMean", "mean over axes"),
    reduce("ReduceSum", "sum over axes"),
    reduce("ReduceMax", "max over axes"),
    reduce("ReduceMin", "min over axes"),
    reduce("ReduceProd", "product over axes"),
    reduce("ReduceL2", "sqrt of the sum of squares over axes"),
    arg("ArgMax", "index of the largest value along axis (int64)"),
    arg("ArgMin", "index of the smallest value along axis (int64)"),
];

/// The reduced axes, normalised and sorted; all axes when the list is empty.
pub fn reduced_axes(attrs: &Attrs, rank: usize) -> Result<Vec<usize>> {
    let axes = attrs.ints("axes")?;
    if axes.is_empty() {
        return Ok((0..rank).collect());
    }
    let mut out = axes
        .iter()
        .map(|&a| norm_axis(a, rank))
        .collect::<Result<Vec<_>>>()?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn reduced_shape(shape: &[i64], axes: &[usize], keep: bool) -> Vec<i64> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keep) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

fn infer_reduce(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    let axes = reduced_axes(&ctx.attrs, x.rank())?;
    let shape = reduced_shape(&x.shape, &axes, ctx.attrs.bool("keepdims")?);
    Ok(vec![TensorType::new(x.dtype, shape)])
}

fn infer_arg(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    let axis = norm_axis(ctx.attrs.int("axis")?, x.rank())?;
    let shape = reduced_shape(&x.shape, &[axis], ctx.attrs.bool("keepdims")?);
    Ok(vec![TensorType::new(DType::I64, shape)])
}
