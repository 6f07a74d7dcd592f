//! Activations and unary math: most are one torch call; parameterised ones spell out their
//! attributes (or use torch's form when the IR's values are torch's defaults); PRelu is
//! `nn.PReLU` for a scalar or per-channel slope and a parameter of its own shape otherwise.
use super::{float, tuple, Ctx, Lower};
use crate::backends::pytorch::state::Entry;
use crate::ir::ops::shape_rules::norm_axis;
use anyhow::{Context, Result};

/// Unary ops that are one torch call.
const UNARY: &[(&str, &str)] = &[
    ("Relu", "F.relu"),
    ("Sigmoid", "torch.sigmoid"),
    ("HardSwish", "F.hardswish"),
    ("SiLU", "F.silu"),
    ("Mish", "F.mish"),
    ("Tanh", "torch.tanh"),
    ("Softplus", "F.softplus"),
    ("Softsign", "F.softsign"),
    ("Exp", "torch.exp"),
    ("Log", "torch.log"),
    ("Sqrt", "torch.sqrt"),
    ("Rsqrt", "torch.rsqrt"),
    ("Reciprocal", "torch.reciprocal"),
    ("Square", "torch.square"),
    ("Abs", "torch.abs"),
    ("Sign", "torch.sign"),
    ("Floor", "torch.floor"),
    ("Ceil", "torch.ceil"),
    ("Round", "torch.round"),
    ("Erf", "torch.erf"),
    ("Sin", "torch.sin"),
    ("Cos", "torch.cos"),
    ("Not", "torch.logical_not"),
];

pub fn lookup(op: &str) -> Option<Lower> {
    if UNARY.iter().any(|(o, _)| *o == op) {
        return Some(unary);
    }
    Some(match op {
        "LeakyRelu" => leaky_relu,
        "PRelu" => prelu,
        "Elu" => elu,
        "Selu" => selu,
        "ThresholdedRelu" => thresholded_relu,
        "HardSigmoid" => hard_sigmoid,
        "Gelu" => gelu,
        "Clip" => clip,
        "Softmax" => |c| softmax(c, "F.softmax"),
        "LogSoftmax" => |c| softmax(c, "F.log_softmax"),
        "Neg" => neg,
        "Identity" => identity,
        _ => return None,
    })
}

fn unary(c: &mut Ctx) -> Result<()> {
    let (_, f) = UNARY
        .iter()
        .find(|(o, _)| *o == c.node.op)
        .context("internal: not a unary op")?;
    let f = c.func(f);
    let x = c.x(0)?;
    c.set(format!("{f}({x})"))
}

fn leaky_relu(c: &mut Ctx) -> Result<()> {
    let f = c.func("F.leaky_relu");
    let x = c.x(0)?;
    c.set(format!("{f}({x}, {})", float(c.a.float("alpha")?)))
}

fn prelu(c: &mut Ctx) -> Result<()> {
    let ty = c.in_ty(0)?;
    let slope = c.info("slope")?;
    let rank = ty.rank();
    let mut padded = vec![1; rank.saturating_sub(slope.shape.len())];
    padded.extend(&slope.shape);
    let numel = slope.numel();
    let per_channel = rank >= 2
        && padded.len() == rank
        && padded
            .iter()
            .enumerate()
            .all(|(i, &d)| d == 1 || (i == 1 && d as i64 == ty.shape[1]));
    let x = c.x(0)?;
    if numel == 1 || per_channel {
        let layer = c.layer(format!("nn.PReLU({numel})"));
        c.entry("weight", "slope", Some(vec![numel]))?;
        return c.set(format!("{layer}({x})"));
    }
    // Any other broadcastable slope: a parameter of its own shape.
    let dims: Vec<i64> = slope.shape.iter().map(|&d| d as i64).collect();
    let p = c.layer(format!("nn.Parameter(torch.zeros({}))", tuple(&dims)));
    let entry = Entry::weight(c.id.clone(), &c.node.name, "slope", slope);
    c.e.root_params.push(entry);
    c.set(format!("torch.where({x} >= 0, {x}, {p} * {x})"))
}

fn elu(c: &mut Ctx) -> Result<()> {
    let f = c.func("F.elu");
    let (x, alpha) = (c.x(0)?, c.a.float("alpha")?);
    c.set(if alpha == 1.0 {
        format!("{f}({x})")
    } else {
        format!("{f}({x}, alpha={})", float(alpha))
    })
}

fn selu(c: &mut Ctx) -> Result<()> {
    let (x, alpha, gamma) = (c.x(0)?, c.a.float("alpha")?, c.a.float("gamma")?);
    if alpha == 1.673_263_2 && gamma == 1.050_701 {
        let f = c.func("F.selu");
        c.set(format!("{f}({x})"))
    } else {
        let f = c.func("F.elu");
        c.set(format!(
            "{} * {f}({x}, alpha={})",
            float(gamma),
            float(alpha)
        ))
    }
}

fn thresholded_relu(c: &mut Ctx) -> Result<()> {
    let f = c.func("F.threshold");
    let x = c.x(0)?;
    c.set(format!("{f}({x}, {}, 0.0)", float(c.a.float("alpha")?)))
}

fn hard_sigmoid(c: &mut Ctx) -> Result<()> {
    let (x, alpha, beta) = (c.x(0)?, c.a.float("alpha")?, c.a.float("beta")?);
    if alpha == 1.0 / 6.0 && beta == 0.5 {
        let f = c.func("F.hardsigmoid");
        c.set(format!("{f}({x})"))
    } else {
        c.set(format!(
            "torch.clamp({x} * {} + {}, 0.0, 1.0)",
            float(alpha),
            float(beta)
        ))
    }
}

fn gelu(c: &mut Ctx) -> Result<()> {
    let f = c.func("F.gelu");
    let x = c.x(0)?;
    c.set(match c.a.str("approximate")?.as_str() {
        "tanh" => format!("{f}({x}, approximate=\"tanh\")"),
        _ => format!("{f}({x})"),
    })
}

fn clip(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let (lo, hi) = (c.a.opt_float("min")?, c.a.opt_float("max")?);
    let int = !c.in_ty(0)?.dtype.is_float();
    let bound = |v: f32, up: bool| {
        if int {
            (if up { v.floor() } else { v.ceil() } as i64).to_string()
        } else {
            float(v)
        }
    };
    match (lo, hi) {
        (None, None) => {
            c.bind(0, x);
            Ok(())
        }
        (Some(l), Some(h)) if l == 0.0 && h == 6.0 && !int => {
            let f = c.func("F.relu6");
            c.set(format!("{f}({x})"))
        }
        (Some(l), None) if l == 0.0 && !int => {
            let f = c.func("F.relu");
            c.set(format!("{f}({x})"))
        }
        (Some(l), None) => c.set(format!("torch.clamp({x}, min={})", bound(l, false))),
        (None, Some(h)) => c.set(format!("torch.clamp({x}, max={})", bound(h, true))),
        (Some(l), Some(h)) => c.set(format!(
            "torch.clamp({x}, {}, {})",
            bound(l, false),
            bound(h, true)
        )),
    }
}

/// Softmax or LogSoftmax (`f`) along the node's axis.
fn softmax(c: &mut Ctx, f: &str) -> Result<()> {
    let x = c.x(0)?;
    let axis = norm_axis(c.a.int("axis")?, c.in_ty(0)?.rank())?;
    let f = c.func(f);
    c.set(format!("{f}({x}, dim={axis})"))
}

fn neg(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    c.set(format!("-{x}"))
}

fn identity(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    c.bind(0, x);
    Ok(())
}
