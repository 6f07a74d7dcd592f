//! The op mappings, one function per ONNX op, grouped by family; `lookup` is the dispatch table
//! by `op_type` (default domain). A mapping reads the node through [`Ctx`] and returns the
//! values of the outputs it maps, in order; opset-dependent forms branch on `ctx.opset`.
mod conv;
mod dense;
mod elementwise;
mod gather_elements;
mod io;
mod norm;
mod pool;
mod quant;
mod recurrent;
mod reduce;
mod resize;
mod shape;

use super::builder::Val;
use super::node::Ctx;
use crate::interp::Value;
use crate::ir::DType;
use anyhow::Result;

/// A mapping: converts one node, returning the values of its leading outputs.
pub type OpFn = fn(&mut Ctx) -> Result<Vec<Val>>;

/// The mapping of a default-domain op.
pub fn lookup(op_type: &str) -> Option<OpFn> {
    elementwise::lookup(op_type)
        .or_else(|| conv::lookup(op_type))
        .or_else(|| pool::lookup(op_type))
        .or_else(|| dense::lookup(op_type))
        .or_else(|| norm::lookup(op_type))
        .or_else(|| reduce::lookup(op_type))
        .or_else(|| shape::lookup(op_type))
        .or_else(|| gather_elements::lookup(op_type))
        .or_else(|| io::lookup(op_type))
        .or_else(|| resize::lookup(op_type))
        .or_else(|| quant::lookup(op_type))
        .or_else(|| recurrent::lookup(op_type))
}

/// Normalises a possibly negative axis against `rank`.
fn axis(a: i64, rank: usize) -> Result<usize> {
    crate::ir::ops::shape_rules::norm_axis(a, rank)
}

/// A scalar constant of `dtype` (floats as f32, integers as i64).
fn scalar(ctx: &mut Ctx, suffix: &str, v: f64, dtype: DType) -> Result<Val> {
    let value = if dtype.is_float() {
        Value::F32(ndarray::arr0(v as f32).into_dyn())
    } else if dtype == DType::Bool {
        Value::Bool(ndarray::arr0(v != 0.0).into_dyn())
    } else {
        Value::I64(ndarray::arr0(v as i64).into_dyn())
    };
    ctx.constant(suffix, &value, dtype)
}

/// `v` converted to `dtype` (a Cast node, or nothing when it already is).
fn cast_to(ctx: &mut Ctx, v: &Val, dtype: DType, suffix: &str) -> Result<Val> {
    if v.dtype() == dtype {
        return Ok(v.clone());
    }
    let s = ctx
        .tmp("Cast", suffix)
        .attr("to", crate::ir::AttrValue::Type(dtype))
        .input(v);
    ctx.emit1(s)
}
