//! Dense layers and matrix products: FullyConnected is `nn.Linear` (its `[in, out]` weights
//! transposed through the state dict), Embedding is `nn.Embedding`, MatMul and Gemm are
//! `torch.matmul` expressions.
use super::{float, Ctx, Lower};
use crate::ir::DType;
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<Lower> {
    Some(match op {
        "FullyConnected" => fully_connected,
        "MatMul" => matmul,
        "Gemm" => gemm,
        "Embedding" => embedding,
        _ => return None,
    })
}

fn fully_connected(c: &mut Ctx) -> Result<()> {
    let w = c.info("weights")?;
    if w.shape.len() != 2 {
        bail!("weights of shape {:?} are not [in, out]", w.shape);
    }
    let (cin, cout) = (w.shape[0], w.shape[1]);
    let bias = c.a.bool("use_bias")?;
    let layer = c.layer(format!(
        "nn.Linear({cin}, {cout}{})",
        if bias { "" } else { ", bias=False" }
    ));
    c.transposed_entry("weight", "weights")?;
    if bias {
        c.entry("bias", "bias", None)?;
    }
    let x = c.x(0)?;
    c.set(format!("{layer}({x})"))
}

fn matmul(c: &mut Ctx) -> Result<()> {
    let (a, b) = (c.x(0)?, c.x(1)?);
    c.set(format!("torch.matmul({a}, {b})"))
}

fn gemm(c: &mut Ctx) -> Result<()> {
    let mut a = c.x(0)?;
    let mut b = c.x(1)?;
    if c.a.bool("trans_a")? {
        a = format!("{a}.t()");
    }
    if c.a.bool("trans_b")? {
        b = format!("{b}.t()");
    }
    let alpha = c.a.float("alpha")?;
    let beta = c.a.float("beta")?;
    let mut expr = format!("torch.matmul({a}, {b})");
    if alpha != 1.0 {
        expr = format!("{} * {expr}", float(alpha));
    }
    if c.node.inputs.len() > 2 {
        let addend = c.x(2)?;
        expr = if beta == 1.0 {
            format!("{expr} + {addend}")
        } else {
            format!("{expr} + {} * {addend}", float(beta))
        };
    }
    c.set(expr)
}

fn embedding(c: &mut Ctx) -> Result<()> {
    let (vocab, dim) = (c.a.int("input_dim")?, c.a.int("output_dim")?);
    let layer = c.layer(format!("nn.Embedding({vocab}, {dim})"));
    c.entry("weight", "weights", None)?;
    let mut x = c.x(0)?;
    if !matches!(c.in_ty(0)?.dtype, DType::I64 | DType::I32) {
        x = format!("{x}.long()");
    }
    c.set(format!("{layer}({x})"))
}
