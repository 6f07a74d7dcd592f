//! One small function per IR op, found by the op's name, grouped by family as the catalogue is.
//! Each emits the ONNX nodes computing the IR node's outputs at the builder's opset, and fails
//! (with the reason) when the op, an attribute value or the opset has no ONNX form.
mod activation;
mod conv;
mod dense;
mod elementwise;
mod io;
mod norm;
mod pool;
mod recurrent;
mod reduce;
mod resize;
mod shape;

use super::builder::{Ctx, A};
use crate::ir::DType;
use anyhow::{anyhow, bail, Result};

/// A family file's lowerings: the lowering of an op, if the family has it.
type Lowerings = fn(&str) -> Option<Lower>;

/// Each family file's lowerings under the file's name.
const FAMILY_LOWERINGS: &[(&str, Lowerings)] = crate::ir::ops::family_table![find as Lowerings:
    io,
    conv,
    pool,
    resize,
    dense,
    norm,
    activation,
    elementwise,
    reduce,
    shape,
    recurrent,
];

/// Lowers one IR node.
pub fn lower(c: &mut Ctx) -> Result<()> {
    crate::backends::check_symbolic_attrs(c.node, "the ONNX writer")?;
    let f = FAMILY_LOWERINGS
        .iter()
        .find_map(|(_, find)| find(&c.node.op))
        .ok_or_else(|| anyhow!("the ONNX writer has no lowering for op {}", c.node.op))?;
    f(c)
}

/// The names of the family files (`src/backends/onnx/ops/<name>.rs`) that lower an op: none
/// or exactly its catalogue family's, as `tests/families.rs` checks.
pub fn lowering_files(op: &str) -> Vec<&'static str> {
    FAMILY_LOWERINGS
        .iter()
        .filter(|(_, find)| find(op).is_some())
        .map(|(file, _)| *file)
        .collect()
}

/// A lowering function.
pub type Lower = fn(&mut Ctx) -> Result<()>;

/// Fails unless the node is channels_first, ONNX's layout (the layout pass makes it so).
fn channels_first(c: &Ctx) -> Result<()> {
    if c.a.channels_last()? {
        bail!("ONNX needs channels_first here (the layout pass left channels_last)");
    }
    Ok(())
}

/// The ONNX element type code of a dtype.
pub fn onnx_dtype(d: DType) -> i32 {
    match d {
        DType::F32 => 1,
        DType::U8 => 2,
        DType::I8 => 3,
        DType::U16 => 4,
        DType::I16 => 5,
        DType::I32 => 6,
        DType::I64 => 7,
        DType::Bool => 9,
        DType::F16 => 10,
        DType::F64 => 11,
        DType::U32 => 12,
        DType::U64 => 13,
        DType::BF16 => 16,
        DType::F8E4M3FN => 17,
        DType::F8E4M3FNUZ => 18,
        DType::F8E5M2 => 19,
        DType::F8E5M2FNUZ => 20,
        DType::U4 => 21,
        DType::I4 => 22,
        DType::F4E2M1 => 23,
        DType::F8E8M0 => 24,
        DType::U2 => 25,
        DType::I2 => 26,
    }
}

/// The first opset whose operators take tensors of `d` (the ONNX IR version of that opset
/// introduced the type).
pub fn min_opset(d: DType) -> i64 {
    match d {
        DType::F8E4M3FN | DType::F8E4M3FNUZ | DType::F8E5M2 | DType::F8E5M2FNUZ => 19,
        DType::U4 | DType::I4 => 21,
        DType::F4E2M1 => 23,
        DType::F8E8M0 => 24,
        DType::U2 | DType::I2 => 25,
        _ => 0,
    }
}

/// First opset in which `op` takes its axes as an input rather than an attribute.
pub fn axes_input_since(op: &str) -> i64 {
    match op {
        "ReduceSum" | "Squeeze" | "Unsqueeze" => 13,
        _ => 18,
    }
}

/// Emits `op` (a reduction, Squeeze or Unsqueeze) over `axes` (`None`: the op's default, all
/// axes), with the axes as attribute or input as the opset wants; writes `out` if given.
pub fn axes_op(
    c: &mut Ctx,
    op: &str,
    x: &str,
    axes: Option<&[i64]>,
    mut attrs: Vec<A>,
    out: Option<&str>,
) -> String {
    let mut inputs = vec![x.to_string()];
    if let Some(axes) = axes {
        if c.opset() >= axes_input_since(op) {
            inputs.push(c.ints("axes", axes));
        } else {
            attrs.push(A::Is("axes", axes.to_vec()));
        }
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    match out {
        Some(o) => {
            c.emit(op, &refs, &[o], attrs);
            o.to_string()
        }
        None => c.op(op, &refs, attrs),
    }
}

/// Shape `[C, 1, …]` that broadcasts a per-channel vector along `axis` of a rank-`rank` tensor.
pub fn channel_shape(c: i64, axis: usize, rank: usize) -> Vec<i64> {
    std::iter::once(c)
        .chain(std::iter::repeat_n(1, rank - axis - 1))
        .collect()
}

/// `v` reshaped to `shape` (skipped when `shape` is 1-d).
pub fn reshape_to(c: &mut Ctx, v: &str, shape: &[i64], suffix: &str) -> String {
    if shape.len() == 1 {
        return v.to_string();
    }
    let s = c.ints(&format!("{suffix}_shape"), shape);
    c.op("Reshape", &[v, &s], vec![])
}
