//! Reductions. The axes are an attribute up to opset 17 (ReduceSum: 12) and an optional input
//! from 18 (ReduceSum: 13), where `noop_with_empty_axes` makes empty axes the identity.
//! ReduceL1, ReduceSumSquare and ReduceLogSum are composed from IR ops; ArgMax/ArgMin map
//! directly.
use super::OpFn;
use crate::frontends::onnx::builder::{not_constant_because, IntsArg, Val};
use crate::frontends::onnx::node::Ctx;
use anyhow::Result;

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "ReduceMean" => |c| reduce(c, None, "ReduceMean", None),
        "ReduceSum" => |c| reduce(c, None, "ReduceSum", None),
        "ReduceMax" => |c| reduce(c, None, "ReduceMax", None),
        "ReduceMin" => |c| reduce(c, None, "ReduceMin", None),
        "ReduceProd" => |c| reduce(c, None, "ReduceProd", None),
        "ReduceL2" => |c| reduce(c, None, "ReduceL2", None),
        "ReduceL1" => |c| reduce(c, Some("Abs"), "ReduceSum", None),
        "ReduceSumSquare" => |c| reduce(c, Some("Square"), "ReduceSum", None),
        "ReduceLogSum" => |c| reduce(c, None, "ReduceSum", Some("Log")),
        "ArgMax" => |c| arg(c, "ArgMax"),
        "ArgMin" => |c| arg(c, "ArgMin"),
        _ => return None,
    })
}

/// `post(op(pre(x)))` over the node's axes.
fn reduce(
    ctx: &mut Ctx,
    pre: Option<&'static str>,
    op: &'static str,
    post: Option<&'static str>,
) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let axes_input = ctx.opset >= 18 || (ctx.node.op_type == "ReduceSum" && ctx.opset >= 13);
    let axes = if axes_input {
        ctx.ints_arg(1, "the axes")?
            .unwrap_or(IntsArg::Known(vec![]))
    } else {
        IntsArg::Known(ctx.opt_ints("axes")?.unwrap_or_default())
    };
    let keepdims = ctx.int("keepdims", 1)? == 1;
    let noop = axes_input && ctx.int("noop_with_empty_axes", 0)? == 1;
    if let (true, IntsArg::Runtime(v)) = (noop, &axes) {
        let why = "noop_with_empty_axes = 1: whether the reduction happens at all is unknown here";
        return Err(not_constant_because(v, "the axes", why));
    }
    if noop && matches!(&axes, IntsArg::Known(a) if a.is_empty()) {
        let s = ctx.spec("Identity").input(&x);
        return Ok(vec![ctx.emit1(s)?]);
    }
    let mut y = x;
    if let Some(p) = pre {
        let s = ctx.tmp(p, &p.to_lowercase()).input(&y);
        y = ctx.emit1(s)?;
    }
    let s = match post {
        Some(_) => ctx.tmp(op, "reduce"),
        None => ctx.spec(op),
    };
    y = ctx.emit1(
        s.ints_or_input("axes", axes)
            .flag("keepdims", keepdims)
            .input(&y),
    )?;
    if let Some(p) = post {
        let s = ctx.spec(p).input(&y);
        y = ctx.emit1(s)?;
    }
    Ok(vec![y])
}

fn arg(ctx: &mut Ctx, op: &'static str) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let s = ctx
        .spec(op)
        .int("axis", ctx.int("axis", 0)?)
        .flag("keepdims", ctx.int("keepdims", 1)? == 1)
        .flag("select_last_index", ctx.int("select_last_index", 0)? == 1)
        .input(&x);
    Ok(vec![ctx.emit1(s)?])
}
