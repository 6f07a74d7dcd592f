//! Reductions: tensor methods over the node's axes (`mean`, `sum`, `amax`, `amin`, a chain of
//! `prod`), `torch.linalg.vector_norm` for ReduceL2, `torch.argmax` / `torch.argmin` (the last
//! best index through a flip).
use super::{tuple, Ctx, Lower};
use crate::ir::ops::shape_rules::norm_axis;
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<Lower> {
    Some(match op {
        "ReduceMean" | "ReduceSum" | "ReduceMax" | "ReduceMin" | "ReduceProd" | "ReduceL2" => {
            reduce
        }
        "ArgMax" | "ArgMin" => arg,
        _ => return None,
    })
}

fn reduce(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let rank = c.in_ty(0)?.rank();
    if let Some(t) = c.runtime_list("axes")? {
        let f = match c.node.op.as_str() {
            "ReduceMean" => "mean",
            "ReduceSum" => "sum",
            "ReduceMax" => "amax",
            "ReduceMin" => "amin",
            op => bail!("{op} over axes computed at run time is not written for PyTorch"),
        };
        let keep = if c.a.bool("keepdims")? {
            ", keepdim=True"
        } else {
            ""
        };
        // An empty list reduces every axis, as in the IR.
        let axes = c.local("axes");
        c.line(format!("{axes} = {t}"));
        return c.set(format!(
            "{x}.{f}(dim={axes} if len({axes}) > 0 else list(range({x}.dim())){keep})"
        ));
    }
    let mut axes =
        c.a.ints("axes")?
            .iter()
            .map(|&a| norm_axis(a, rank))
            .collect::<Result<Vec<_>>>()?;
    if axes.is_empty() {
        axes = (0..rank).collect();
    }
    axes.sort_unstable();
    axes.dedup();
    if axes.is_empty() {
        c.bind(0, x);
        return Ok(());
    }
    let keep = c.a.bool("keepdims")?;
    let keep_arg = if keep { ", keepdim=True" } else { "" };
    let dims: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
    let dim = if dims.len() == 1 {
        dims[0].to_string()
    } else {
        tuple(&dims)
    };
    let expr = match c.node.op.as_str() {
        "ReduceMean" => format!("{x}.mean(dim={dim}{keep_arg})"),
        "ReduceSum" => format!("{x}.sum(dim={dim}{keep_arg})"),
        "ReduceMax" => format!("{x}.amax(dim={dim}{keep_arg})"),
        "ReduceMin" => format!("{x}.amin(dim={dim}{keep_arg})"),
        "ReduceL2" => format!("torch.linalg.vector_norm({x}, dim={dim}{keep_arg})"),
        _ => {
            // prod reduces one axis at a time; the last first keeps the others' indices.
            let chain: String = axes
                .iter()
                .rev()
                .map(|a| format!(".prod(dim={a}{keep_arg})"))
                .collect();
            format!("{x}{chain}")
        }
    };
    c.set(expr)
}

fn arg(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let rank = c.in_ty(0)?.rank();
    let axis = norm_axis(c.a.int("axis")?, rank)?;
    let keep = if c.a.bool("keepdims")? {
        ", keepdim=True"
    } else {
        ""
    };
    let f = if c.node.op == "ArgMax" {
        "torch.argmax"
    } else {
        "torch.argmin"
    };
    if c.a.bool("select_last_index")? {
        // The last best index is the first one of the flipped axis, counted from the end.
        let n = c.dim(&x, axis)?;
        c.set(format!(
            "({n} - 1) - {f}({x}.flip({axis}), dim={axis}{keep})"
        ))
    } else {
        c.set(format!("{f}({x}, dim={axis}{keep})"))
    }
}
