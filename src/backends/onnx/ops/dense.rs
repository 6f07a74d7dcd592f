//! Dense layers and matrix products: FullyConnected is Gemm on 2-d inputs and MatMul + Add
//! otherwise (its weights are `[in, out]`, ONNX's B); Embedding is Gather on its table.
use super::{Lower, A};
use crate::backends::onnx::builder::Ctx;
use crate::ir::DType;
use anyhow::Result;

pub fn find(op: &str) -> Option<Lower> {
    Some(match op {
        "FullyConnected" => fully_connected,
        "MatMul" => matmul,
        "Gemm" => gemm,
        "Embedding" => embedding,
        _ => return None,
    })
}

fn fully_connected(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let w = c.weight("weights")?;
    let bias = if c.a.bool("use_bias")? {
        Some(c.weight("bias")?)
    } else {
        None
    };
    match (c.in_ty(0)?.rank(), bias) {
        (2, Some(b)) => c.last("Gemm", &[&x, &w, &b], vec![]),
        (_, None) => c.last("MatMul", &[&x, &w], vec![]),
        (_, Some(b)) => {
            let m = c.op("MatMul", &[&x, &w], vec![]);
            c.last("Add", &[&m, &b], vec![])
        }
    }
}

fn matmul(c: &mut Ctx) -> Result<()> {
    let (a, b) = (c.x(0)?, c.x(1)?);
    c.last("MatMul", &[&a, &b], vec![])
}

fn gemm(c: &mut Ctx) -> Result<()> {
    let mut inputs = vec![c.x(0)?, c.x(1)?];
    if c.node.inputs.len() > 2 {
        inputs.push(c.x(2)?);
    }
    let attrs = vec![
        A::F("alpha", c.a.float("alpha")?),
        A::F("beta", c.a.float("beta")?),
        A::I("transA", c.a.bool("trans_a")? as i64),
        A::I("transB", c.a.bool("trans_b")? as i64),
    ];
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    c.last("Gemm", &refs, attrs)
}

/// Indices as ONNX accepts them (int32 or int64; other types are cast to int64).
pub fn indices(c: &mut Ctx, i: usize) -> Result<String> {
    let x = c.x(i)?;
    Ok(match c.in_ty(i)?.dtype {
        DType::I32 | DType::I64 => x,
        _ => c.op("Cast", &[&x], vec![A::I("to", 7)]),
    })
}

fn embedding(c: &mut Ctx) -> Result<()> {
    let idx = indices(c, 0)?;
    let w = c.weight("weights")?;
    c.last("Gather", &[&w, &idx], vec![A::I("axis", 0)])
}
