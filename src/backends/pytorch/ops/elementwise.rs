//! Elementwise binary ops, comparisons, logic and Where: Python operators for Add, Sub, Mul and
//! float Div, one torch call for the others (truncating division for integers; Mod as
//! `torch.fmod` or `torch.remainder` by the sign convention).
use super::{Ctx, Lower};
use anyhow::{Context, Result};

/// Binary ops that are one torch call.
const BINARY: &[(&str, &str)] = &[
    ("Pow", "torch.pow"),
    ("Maximum", "torch.maximum"),
    ("Minimum", "torch.minimum"),
    ("Equal", "torch.eq"),
    ("Greater", "torch.gt"),
    ("GreaterOrEqual", "torch.ge"),
    ("Less", "torch.lt"),
    ("LessOrEqual", "torch.le"),
    ("And", "torch.logical_and"),
    ("Or", "torch.logical_or"),
    ("Xor", "torch.logical_xor"),
];

pub fn lookup(op: &str) -> Option<Lower> {
    if BINARY.iter().any(|(o, _)| *o == op) {
        return Some(binary);
    }
    Some(match op {
        "Add" => |c| operator(c, "+"),
        "Sub" => |c| operator(c, "-"),
        "Mul" => |c| operator(c, "*"),
        "Div" => div,
        "Mod" => modulo,
        "Where" => select,
        _ => return None,
    })
}

fn binary(c: &mut Ctx) -> Result<()> {
    let (_, f) = BINARY
        .iter()
        .find(|(o, _)| *o == c.node.op)
        .context("internal: not a binary op")?;
    let (a, b) = (c.x(0)?, c.x(1)?);
    c.set(format!("{f}({a}, {b})"))
}

/// `a <sym> b` with a Python operator.
fn operator(c: &mut Ctx, sym: &str) -> Result<()> {
    let (a, b) = (c.x(0)?, c.x(1)?);
    c.set(format!("{a} {sym} {b}"))
}

fn div(c: &mut Ctx) -> Result<()> {
    let (a, b) = (c.x(0)?, c.x(1)?);
    if c.in_ty(0)?.dtype.is_float() {
        c.set(format!("{a} / {b}"))
    } else {
        c.set(format!("torch.div({a}, {b}, rounding_mode=\"trunc\")"))
    }
}

fn modulo(c: &mut Ctx) -> Result<()> {
    let (a, b) = (c.x(0)?, c.x(1)?);
    // remainder: the divisor's sign; fmod: the dividend's.
    let f = if c.a.int("fmod")? == 1 {
        "torch.fmod"
    } else {
        "torch.remainder"
    };
    c.set(format!("{f}({a}, {b})"))
}

/// Where: `cond ? a : b` elementwise.
fn select(c: &mut Ctx) -> Result<()> {
    let (cond, a, b) = (c.x(0)?, c.x(1)?, c.x(2)?);
    c.set(format!("torch.where({cond}, {a}, {b})"))
}
