//! Activations and unary math: most are one ONNX op of the same meaning; SiLU, Rsqrt, Square
//! and (below their opsets) HardSwish, Mish and Gelu are composed from simpler ops.
use super::{Lower, A};
use crate::backends::onnx::builder::Ctx;
use anyhow::Result;

/// IR ops that are the ONNX op of the same (or the given) name, attributes copied.
const SAME: &[(&str, &str, &[&str])] = &[
    ("Relu", "Relu", &[]),
    ("Sigmoid", "Sigmoid", &[]),
    ("Tanh", "Tanh", &[]),
    ("Softplus", "Softplus", &[]),
    ("Softsign", "Softsign", &[]),
    ("Exp", "Exp", &[]),
    ("Log", "Log", &[]),
    ("Sqrt", "Sqrt", &[]),
    ("Reciprocal", "Reciprocal", &[]),
    ("Abs", "Abs", &[]),
    ("Neg", "Neg", &[]),
    ("Sign", "Sign", &[]),
    ("Floor", "Floor", &[]),
    ("Ceil", "Ceil", &[]),
    ("Round", "Round", &[]),
    ("Erf", "Erf", &[]),
    ("Sin", "Sin", &[]),
    ("Cos", "Cos", &[]),
    ("Not", "Not", &[]),
    ("Identity", "Identity", &[]),
    ("LeakyRelu", "LeakyRelu", &["alpha"]),
    ("Elu", "Elu", &["alpha"]),
    ("Selu", "Selu", &["alpha", "gamma"]),
    ("ThresholdedRelu", "ThresholdedRelu", &["alpha"]),
    ("HardSigmoid", "HardSigmoid", &["alpha", "beta"]),
];

pub fn find(op: &str) -> Option<Lower> {
    if SAME.iter().any(|(o, _, _)| *o == op) {
        return Some(same);
    }
    Some(match op {
        "Softmax" => |c| softmax(c, "Softmax"),
        "LogSoftmax" => |c| softmax(c, "LogSoftmax"),
        "PRelu" => prelu,
        "HardSwish" => hard_swish,
        "SiLU" => silu,
        "Gelu" => gelu,
        "Mish" => mish,
        "Clip" => clip,
        "Rsqrt" => rsqrt,
        "Square" => square,
        _ => return None,
    })
}

fn same(c: &mut Ctx) -> Result<()> {
    let (_, onnx, attrs) = SAME
        .iter()
        .find(|(o, _, _)| *o == c.node.op)
        .expect("found by find()");
    let mut list = vec![];
    for &name in attrs.iter() {
        list.push(A::F(name, c.a.float(name)?));
    }
    let x = c.x(0)?;
    c.last(onnx, &[&x], list)
}

fn softmax(c: &mut Ctx, op: &str) -> Result<()> {
    let x = c.x(0)?;
    let axis = c.a.int("axis")?;
    c.last(op, &[&x], vec![A::I("axis", axis)])
}

fn prelu(c: &mut Ctx) -> Result<()> {
    let (x, s) = (c.x(0)?, c.weight("slope")?);
    c.last("PRelu", &[&x, &s], vec![])
}

fn hard_swish(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    if c.opset() >= 14 {
        return c.last("HardSwish", &[&x], vec![]);
    }
    let hs = c.op(
        "HardSigmoid",
        &[&x],
        vec![A::F("alpha", 1.0 / 6.0), A::F("beta", 0.5)],
    );
    c.last("Mul", &[&x, &hs], vec![])
}

fn silu(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let s = c.op("Sigmoid", &[&x], vec![]);
    c.last("Mul", &[&x, &s], vec![])
}

fn gelu(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let approx = c.a.str("approximate")?;
    if c.opset() >= 20 {
        return c.last("Gelu", &[&x], vec![A::S("approximate", approx)]);
    }
    let dt = c.in_ty(0)?.dtype;
    let half = c.scalar("half", dt, 0.5)?;
    let one = c.scalar("one", dt, 1.0)?;
    let inner = if approx == "tanh" {
        // tanh(sqrt(2/π)·(x + 0.044715·x³))
        let k = c.scalar("k", dt, (2.0 / std::f64::consts::PI).sqrt())?;
        let a = c.scalar("a", dt, 0.044715)?;
        let x2 = c.op("Mul", &[&x, &x], vec![]);
        let x3 = c.op("Mul", &[&x2, &x], vec![]);
        let ax3 = c.op("Mul", &[&x3, &a], vec![]);
        let s = c.op("Add", &[&x, &ax3], vec![]);
        let ks = c.op("Mul", &[&s, &k], vec![]);
        c.op("Tanh", &[&ks], vec![])
    } else {
        // erf(x / √2)
        let r = c.scalar("sqrt2", dt, std::f64::consts::SQRT_2)?;
        let d = c.op("Div", &[&x, &r], vec![]);
        c.op("Erf", &[&d], vec![])
    };
    let p = c.op("Add", &[&inner, &one], vec![]);
    let hx = c.op("Mul", &[&x, &half], vec![]);
    c.last("Mul", &[&hx, &p], vec![])
}

fn mish(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    if c.opset() >= 18 {
        return c.last("Mish", &[&x], vec![]);
    }
    let sp = c.op("Softplus", &[&x], vec![]);
    let t = c.op("Tanh", &[&sp], vec![]);
    c.last("Mul", &[&x, &t], vec![])
}

fn clip(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let dt = c.in_ty(0)?.dtype;
    // Integer bounds round inwards, as the interpreter does.
    let bound = |v: f32, up: bool| -> f64 {
        match (dt.is_float(), up) {
            (true, _) => v as f64,
            (false, true) => v.ceil() as f64,
            (false, false) => v.floor() as f64,
        }
    };
    let lo = match c.a.opt_float("min")? {
        Some(v) => c.scalar("min", dt, bound(v, true))?,
        None => String::new(),
    };
    let hi = match c.a.opt_float("max")? {
        Some(v) => c.scalar("max", dt, bound(v, false))?,
        None => String::new(),
    };
    let mut inputs = vec![x.as_str(), lo.as_str(), hi.as_str()];
    while inputs.last() == Some(&"") {
        inputs.pop();
    }
    c.last("Clip", &inputs, vec![])
}

fn rsqrt(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let s = c.op("Sqrt", &[&x], vec![]);
    c.last("Reciprocal", &[&s], vec![])
}

fn square(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    c.last("Mul", &[&x, &x], vec![])
}
