//! Shape, indexing and data movement: tensor methods and indexing (`reshape`, `permute`,
//! `squeeze`, slicing with flips for negative steps, `expand`, `repeat`), `torch.cat`,
//! `torch.split`, `F.pad` (or mirrored edges joined by `torch.cat` where `F.pad` cannot),
//! ScatterND through row indices, Cast with explicit float8 overflow, and the block
//! rearrangements of DepthToSpace and SpaceToDepth.
use super::{float, torch_pads, tuple, Ctx, Lower};
use crate::backends::pytorch::torch_dtype;
use crate::ir::ops::shape_rules::norm_axis;
use crate::ir::{narrow, DType};
use anyhow::{bail, Context, Result};

pub fn lookup(op: &str) -> Option<Lower> {
    Some(match op {
        "Reshape" => reshape,
        "Flatten" => flatten,
        "Transpose" => transpose,
        "Squeeze" => squeeze,
        "Unsqueeze" => unsqueeze,
        "Concat" => concat,
        "Split" => split,
        "Slice" => slice,
        "Pad" => pad,
        "Tile" => tile,
        "Expand" => expand,
        "Gather" => gather,
        "ScatterND" => scatter_nd,
        "Shape" => shape,
        "Range" => range,
        "Cast" => cast,
        "DepthToSpace" => depth_to_space,
        "SpaceToDepth" => space_to_depth,
        _ => return None,
    })
}

fn reshape(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    if let Some(t) = c.runtime_list("shape")? {
        // A 0 copies the input's dim, as in the IR.
        return c.set(format!(
            "{x}.reshape([{x}.shape[i] if d == 0 else d for i, d in enumerate({t})])"
        ));
    }
    let target = c.a.ints("shape")?;
    let dims = target
        .iter()
        .enumerate()
        .map(|(i, &d)| if d == 0 { c.dim(&x, i) } else { c.py_dim(d) })
        .collect::<Result<Vec<_>>>()?;
    if dims.is_empty() {
        return c.set(format!("{x}.reshape(())"));
    }
    c.set(format!("{x}.reshape({})", dims.join(", ")))
}

fn flatten(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let rank = c.in_ty(0)?.rank() as i64;
    let axis = c.a.int("axis")?;
    let axis = if axis < 0 { axis + rank } else { axis };
    if axis < 0 || axis > rank {
        bail!("axis is out of range for rank {rank}");
    }
    c.set(if axis == rank {
        format!("{x}.reshape(-1, 1)")
    } else if axis == 0 {
        format!("{x}.reshape(1, -1)")
    } else if axis == 1 {
        format!("torch.flatten({x}, 1)")
    } else {
        format!("{x}.flatten(0, {}).flatten(1)", axis - 1)
    })
}

fn transpose(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let rank = c.in_ty(0)?.rank();
    let perm =
        c.a.ints("perm")?
            .iter()
            .map(|&p| norm_axis(p, rank).map(|a| a.to_string()))
            .collect::<Result<Vec<_>>>()?;
    c.set(format!("{x}.permute({})", perm.join(", ")))
}

fn squeeze(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    if let Some(t) = c.runtime_list("axes")? {
        return c.set(format!("{x}.squeeze({t})"));
    }
    let rank = c.in_ty(0)?.rank();
    let axes =
        c.a.ints("axes")?
            .iter()
            .map(|&a| norm_axis(a, rank).map(|v| v as i64))
            .collect::<Result<Vec<_>>>()?;
    c.set(match axes.len() {
        0 => format!("{x}.squeeze()"),
        1 => format!("{x}.squeeze({})", axes[0]),
        _ => format!("{x}.squeeze({})", tuple(&axes)),
    })
}

fn unsqueeze(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    if let Some(t) = c.runtime_list("axes")? {
        // Axes count in the output, whose rank is the input's plus one per axis.
        let axes = c.local("axes");
        c.line(format!("{axes} = {t}"));
        let id = c.id.clone();
        let header =
            format!("for axis in sorted([a % ({x}.dim() + len({axes})) for a in {axes}]):");
        return c.set_loop(x, header, format!("{id}.unsqueeze(axis)"));
    }
    let rank = c.out_ty(0)?.rank();
    let mut axes =
        c.a.ints("axes")?
            .iter()
            .map(|&v| norm_axis(v, rank))
            .collect::<Result<Vec<_>>>()?;
    axes.sort_unstable();
    let chain: String = axes.iter().map(|a| format!(".unsqueeze({a})")).collect();
    c.set(format!("{x}{chain}"))
}

fn concat(c: &mut Ctx) -> Result<()> {
    let rank = c.in_ty(0)?.rank();
    let axis = norm_axis(c.a.int("axis")?, rank)?;
    let xs = (0..c.node.inputs.len())
        .map(|i| c.x(i))
        .collect::<Result<Vec<_>>>()?;
    c.set(format!("torch.cat([{}], dim={axis})", xs.join(", ")))
}

fn split(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let rank = c.in_ty(0)?.rank();
    let axis = norm_axis(c.a.int("axis")?, rank)?;
    let list = match c.runtime_list("split")? {
        Some(t) => t,
        None => {
            let sizes = c.a.ints("split")?;
            let items: Vec<String> = sizes.iter().map(|s| s.to_string()).collect();
            format!("[{}]", items.join(", "))
        }
    };
    let uses = c.e.graph.consumers();
    let mut names = vec![];
    for k in 0..c.node.outputs.len() {
        if uses.get(&c.node.output(k)).copied().unwrap_or(0) == 0 {
            names.push("_".to_string());
            continue;
        }
        let name = if k == 0 {
            c.id.clone()
        } else {
            c.local(&k.to_string())
        };
        c.bind(k, name.clone());
        names.push(name);
    }
    let targets = if names.len() == 1 {
        format!("({},)", names[0])
    } else {
        names.join(", ")
    };
    c.line(format!("{targets} = torch.split({x}, {list}, dim={axis})"));
    Ok(())
}

/// A Slice with bounds, axes or steps computed at run time: one `index_select` per sliced axis,
/// its indices a Python list slice (which clamps as ONNX and NumPy do, negative steps too).
fn slice_at_run_time(c: &mut Ctx, x: String) -> Result<()> {
    let mut lists = vec![];
    for attr in ["starts", "ends", "axes", "steps"] {
        let given = match c.runtime_list(attr)? {
            Some(t) => Some(t),
            None => c.a.opt_ints(attr)?.map(|v| {
                let items: Vec<String> = v.iter().map(|d| d.to_string()).collect();
                format!("[{}]", items.join(", "))
            }),
        };
        let list = c.local(attr);
        let value = match (given, attr) {
            (Some(v), _) => v,
            (None, "axes") => format!("range(len({}))", lists[0]),
            (None, _) => format!("[1] * len({})", lists[0]),
        };
        c.line(format!("{list} = {value}"));
        lists.push(list);
    }
    let id = c.id.clone();
    let header = format!("for start, end, axis, step in zip({}):", lists.join(", "));
    let body = format!(
        "{id}.index_select(axis, torch.tensor(list(range({id}.shape[axis]))[start:end:step], \
         dtype=torch.long, device={id}.device))"
    );
    c.set_loop(x, header, body)
}

fn slice(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    if c.node.runtime_inputs() > 0 {
        return slice_at_run_time(c, x);
    }
    let shape = c.in_ty(0)?.shape;
    let rank = shape.len();
    let starts = c.a.ints("starts")?;
    let ends = c.a.ints("ends")?;
    let n = starts.len();
    let axes =
        c.a.opt_ints("axes")?
            .unwrap_or_else(|| (0..n as i64).collect());
    let steps = c.a.opt_ints("steps")?.unwrap_or(vec![1; n]);
    if ends.len() != n || axes.len() != n || steps.len() != n {
        bail!("starts, ends, axes and steps differ in length");
    }
    let mut index = vec![":".to_string(); rank];
    let mut flips = vec![];
    for k in 0..n {
        let ax = norm_axis(axes[k], rank)?;
        let (s, e, st) = (starts[k], ends[k], steps[k]);
        if st == 0 {
            bail!("slice step is 0");
        }
        let d = shape[ax];
        let sym = crate::ir::dim::is_symbolic;
        if st > 0 {
            // A symbolic bound is written as its expression of the inputs' shapes.
            let start = match s {
                0 => None,
                v if sym(v) => Some(c.py_dim(v)?),
                v => Some(v.to_string()),
            };
            let stop = match e {
                v if sym(v) => Some(c.py_dim(v)?),
                v => big(v, d).map(|v| v.to_string()),
            };
            index[ax] = py_slice(start, stop, st);
            continue;
        }
        if sym(s) || sym(e) {
            bail!("a negative slice step with a symbolic start or end");
        }
        // Negative steps: slice the flipped axis forward. Position i of the flipped
        // axis is position d - 1 - i of the original.
        flips.push(ax);
        let st = -st;
        if d >= 0 {
            let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
            let (s, e) = (norm(s).clamp(-1, d - 1), norm(e).clamp(-1, d - 1));
            let (fs, fe) = (d - 1 - s, d - 1 - e);
            index[ax] = py_slice(
                Some(fs).filter(|&v| v != 0).map(|v| v.to_string()),
                Some(fe).filter(|&v| v < d).map(|v| v.to_string()),
                st,
            );
        } else if s < 0 && (e == i64::MIN || e < -(1 << 40)) {
            index[ax] = py_slice(
                Some(-1 - s).filter(|&v| v != 0).map(|v| v.to_string()),
                None,
                st,
            );
        } else {
            bail!("a negative slice step on an axis of unknown size");
        }
    }
    let flip: String = if flips.is_empty() {
        String::new()
    } else {
        flips.sort_unstable();
        let dims: Vec<i64> = flips.iter().map(|&a| a as i64).collect();
        format!(
            ".flip({})",
            if dims.len() == 1 {
                dims[0].to_string()
            } else {
                tuple(&dims)
            }
        )
    };
    while index.last().is_some_and(|s| s == ":") {
        index.pop();
    }
    if index.is_empty() {
        return c.set(format!("{x}{flip}"));
    }
    c.set(format!("{x}{flip}[{}]", index.join(", ")))
}

fn pad(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let shape = c.in_ty(0)?.shape;
    let rank = shape.len();
    if let Some(t) = c.runtime_list("pads")? {
        if c.a.str("mode")? != "constant" {
            bail!("padding by amounts computed at run time is written in constant mode only");
        }
        // F.pad lists (begin, end) from the last axis backwards.
        let pads = c.local("pads");
        c.line(format!("{pads} = {t}"));
        let f = c.func("F.pad");
        let value = float(c.a.float("value")?);
        let last = rank as i64 - 1;
        return c.set(format!(
            "{f}({x}, [{pads}[{last} - j // 2 + j % 2 * {rank}] for j in range({})], \
             value={value})",
            2 * rank
        ));
    }
    let pads = c.a.ints("pads")?;
    if pads.len() != 2 * rank {
        bail!(
            "pads has {} values; rank {rank} needs {}",
            pads.len(),
            2 * rank
        );
    }
    let (b, e) = (&pads[..rank], &pads[rank..]);
    let mode = c.a.str("mode")?;
    let value = c.a.float("value")?;
    let f = c.func("F.pad");
    // F.pad lists (begin, end) from the last axis backwards; leading axes without
    // padding are left out.
    let first = (0..rank).find(|&i| b[i] != 0 || e[i] != 0);
    let Some(first) = first else {
        c.bind(0, x);
        return Ok(());
    };
    let list = torch_pads(&b[first..], &e[first..]);
    if mode == "constant" {
        return c.set(if value == 0.0 {
            format!("{f}({x}, {list})")
        } else {
            format!("{f}({x}, {list}, value={})", float(value))
        });
    }
    if b.iter().chain(e).any(|&p| p < 0) {
        bail!("negative pads in {mode} mode");
    }
    let k = rank - first;
    let fits = |i: usize| shape[i] < 0 || (b[i] < shape[i] && e[i] < shape[i]);
    let native = k <= 3 && rank <= k + 2 && rank > k && mode != "symmetric";
    if native && (mode == "edge" || (first..rank).all(fits)) {
        let m = if mode == "edge" {
            "replicate"
        } else {
            "reflect"
        };
        return c.set(format!("{f}({x}, {list}, mode=\"{m}\")"));
    }
    // Axis by axis: mirrored or repeated edges joined to the tensor.
    let mut cur = x;
    let padded: Vec<usize> = (0..rank).filter(|&i| b[i] != 0 || e[i] != 0).collect();
    for (n, &ax) in padded.iter().enumerate() {
        let (pb, pe) = (b[ax], e[ax]);
        if shape[ax] >= 0 {
            let limit = if mode == "reflect" {
                shape[ax] - 1
            } else {
                shape[ax]
            };
            if pb > limit || pe > limit {
                bail!(
                    "{mode} padding of {pb}/{pe} on axis {ax} of size {}",
                    shape[ax]
                );
            }
        }
        let at = |range: &str| {
            let mut idx = vec![":"; ax + 1];
            idx[ax] = range;
            format!("{cur}[{}]", idx.join(", "))
        };
        let mut parts = vec![];
        if pb > 0 {
            parts.push(match mode.as_str() {
                "reflect" => format!("{}.flip({ax})", at(&format!("1:{}", pb + 1))),
                "symmetric" => format!("{}.flip({ax})", at(&format!(":{pb}"))),
                _ => format!("{}.repeat_interleave({pb}, dim={ax})", at(":1")),
            });
        }
        parts.push(cur.clone());
        if pe > 0 {
            parts.push(match mode.as_str() {
                "reflect" => format!("{}.flip({ax})", at(&format!("-{}:-1", pe + 1))),
                "symmetric" => format!("{}.flip({ax})", at(&format!("-{pe}:"))),
                _ => format!("{}.repeat_interleave({pe}, dim={ax})", at("-1:")),
            });
        }
        let name = if n + 1 == padded.len() {
            c.id.clone()
        } else {
            c.local("pad")
        };
        c.line(format!(
            "{name} = torch.cat([{}], dim={ax})",
            parts.join(", ")
        ));
        cur = name;
    }
    c.bind(0, cur);
    Ok(())
}

fn tile(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    if let Some(t) = c.runtime_list("repeats")? {
        return c.set(format!("{x}.repeat({t})"));
    }
    let reps = c.a.ints("repeats")?;
    if reps.is_empty() {
        c.bind(0, x);
        return Ok(());
    }
    if reps.iter().any(|&r| crate::ir::dim::is_symbolic(r)) {
        let reps: Vec<String> = reps.iter().map(|&r| c.py_dim(r)).collect::<Result<_>>()?;
        return c.set(format!("{x}.repeat({})", reps.join(", ")));
    }
    c.set(format!("{x}.repeat{}", tuple(&reps)))
}

fn expand(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    if let Some(t) = c.runtime_list("shape")? {
        // NumPy broadcasting both ways, as the IR's Expand.
        return c.set(format!(
            "torch.broadcast_tensors({x}, {x}.new_empty({t}))[0]"
        ));
    }
    let in_rank = c.in_ty(0)?.rank();
    let out = c.out_ty(0)?.shape;
    let lead = out.len() - in_rank.min(out.len());
    for (i, &d) in out.iter().enumerate() {
        if d == -1 && i < lead {
            bail!("expanding to a new axis of unknown size");
        }
    }
    let dims: Vec<String> = out.iter().map(|&d| c.py_dim(d)).collect::<Result<_>>()?;
    c.set(format!("{x}.expand({})", dims.join(", ")))
}

fn gather(c: &mut Ctx) -> Result<()> {
    let data = c.x(0)?;
    let mut idx = c.x(1)?;
    let rank = c.in_ty(0)?.rank();
    let axis = norm_axis(c.a.int("axis")?, rank)?;
    if !matches!(c.in_ty(1)?.dtype, DType::I64 | DType::I32) {
        idx = format!("{idx}.long()");
    }
    let mut index = vec![":".to_string(); axis];
    index.push(idx);
    c.set(format!("{data}[{}]", index.join(", ")))
}

/// ScatterND: data viewed as rows `[prod(dims[..k]), *dims[k..]]`; each index tuple becomes
/// a row number (negative entries wrapped), and the update rows are copied or reduced in.
fn scatter_nd(c: &mut Ctx) -> Result<()> {
    let (x, idx, upd) = (c.x(0)?, c.x(1)?, c.x(2)?);
    let k = *c.in_ty(1)?.shape.last().context("indices is a scalar")?;
    if k < 1 {
        bail!("indices with an empty last axis (updates replacing the whole tensor)");
    }
    let k = k as usize;
    let (i, row) = (c.local("idx"), c.local("row"));
    c.line(format!("{i} = {idx}.reshape(-1, {k}).long()"));
    for t in 0..k {
        let n = c.dim(&x, t)?;
        let wrapped = format!("torch.remainder({i}[:, {t}], {n})");
        c.line(if t == 0 {
            format!("{row} = {wrapped}")
        } else {
            format!("{row} = {row} * {n} + {wrapped}")
        });
    }
    // The updates' leading axes (the index tuples') become one.
    let u = match c.in_ty(1)?.rank() {
        1 => format!("{upd}.unsqueeze(0)"),
        q => format!("{upd}.flatten(0, {})", q - 2),
    };
    let call = match c.a.str("reduction")?.as_str() {
        "add" => format!("index_add(0, {row}, {u})"),
        "mul" => format!("index_reduce(0, {row}, {u}, \"prod\")"),
        "max" => format!("index_reduce(0, {row}, {u}, \"amax\")"),
        "min" => format!("index_reduce(0, {row}, {u}, \"amin\")"),
        _ => format!("index_copy(0, {row}, {u})"),
    };
    c.set(format!(
        "{x}.flatten(0, {}).{call}.reshape({x}.shape)",
        k - 1
    ))
}

fn shape(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    c.set(format!("torch.tensor({x}.shape, dtype=torch.int64)"))
}

/// `torch.arange`, its limit read from the inputs' shapes when symbolic.
fn range(c: &mut Ctx) -> Result<()> {
    if c.node.runtime_inputs() > 0 {
        let mut bounds = vec![];
        for attr in ["start", "limit", "delta"] {
            bounds.push(match c.runtime_var(attr)? {
                Some(t) => format!("int({t})"),
                None => c.py_dim(c.a.int(attr)?)?,
            });
        }
        return c.set(format!("torch.arange({})", bounds.join(", ")));
    }
    let (start, delta) = (c.a.int("start")?, c.a.int("delta")?);
    let limit = c.py_dim(c.a.int("limit")?)?;
    c.set(match (start, delta) {
        (0, 1) => format!("torch.arange({limit})"),
        (s, 1) => format!("torch.arange({s}, {limit})"),
        (s, d) => format!("torch.arange({s}, {limit}, {d})"),
    })
}

fn cast(c: &mut Ctx) -> Result<()> {
    let x = c.x(0)?;
    let dt = c.a.dtype("to")?;
    let to = torch_dtype(dt)?;
    // Out-of-range float8 values are made explicit rather than left to torch's conversion:
    // saturating clamps (NaN stays NaN); otherwise what rounds past the largest finite value
    // becomes NaN, or infinity for e5m2.
    if !dt.is_minifloat() {
        return c.set(format!("{x}.to({to})"));
    }
    let y = format!("{x}.float()");
    let e = if c.a.bool("saturate")? {
        let max = narrow::max(dt);
        format!("{y}.clamp({:?}, {max:?})", -max)
    } else {
        let (tie, stays) = narrow::overflow_tie(dt);
        let cmp = if stays { "<=" } else { "<" };
        let over = if dt == DType::F8E5M2 {
            format!("{y}.sign() * float(\"inf\")")
        } else {
            format!("{y} * float(\"nan\")")
        };
        format!("torch.where({y}.abs() {cmp} {tie:?}, {y}, {over})")
    };
    c.set(format!("{e}.to({to})"))
}

fn depth_to_space(c: &mut Ctx) -> Result<()> {
    c.channels_first()?;
    if c.in_ty(0)?.rank() != 4 {
        bail!("expects a 4-d input");
    }
    let b = c.a.int("blocksize")?;
    let x = c.x(0)?;
    if c.a.str("mode")? == "CRD" {
        let f = c.func("F.pixel_shuffle");
        return c.set(format!("{f}({x}, {b})"));
    }
    let (n, ch, h, w) = (c.dim(&x, 0)?, c.dim(&x, 1)?, c.dim(&x, 2)?, c.dim(&x, 3)?);
    let c2 = match ch.parse::<i64>() {
        Ok(ch) => (ch / (b * b)).to_string(),
        Err(_) => format!("{ch} // {}", b * b),
    };
    let (hb, wb) = (scaled(&h, b), scaled(&w, b));
    c.line("# depth-column-row order: channel blocks (row, column, depth).".into());
    c.set(format!(
        "{x}.reshape({n}, {b}, {b}, {c2}, {h}, {w}).permute(0, 3, 4, 1, 5, 2).reshape({n}, {c2}, {hb}, {wb})"
    ))
}

fn space_to_depth(c: &mut Ctx) -> Result<()> {
    c.channels_first()?;
    if c.in_ty(0)?.rank() != 4 {
        bail!("expects a 4-d input");
    }
    let b = c.a.int("blocksize")?;
    let x = c.x(0)?;
    let (n, ch, h, w) = (c.dim(&x, 0)?, c.dim(&x, 1)?, c.dim(&x, 2)?, c.dim(&x, 3)?);
    let div = |v: &str| match v.parse::<i64>() {
        Ok(v) => (v / b).to_string(),
        Err(_) => format!("{v} // {b}"),
    };
    let (h2, w2) = (div(&h), div(&w));
    let cb = scaled(&ch, b * b);
    c.set(format!(
        "{x}.reshape({n}, {ch}, {h2}, {b}, {w2}, {b}).permute(0, 3, 5, 1, 2, 4).reshape({n}, {cb}, {h2}, {w2})"
    ))
}

/// A Python slice `start:stop:step`, parts left out when `None` (or the step is 1).
fn py_slice(start: Option<String>, stop: Option<String>, step: i64) -> String {
    let s = start.unwrap_or_default();
    let e = stop.unwrap_or_default();
    if step == 1 {
        format!("{s}:{e}")
    } else {
        format!("{s}:{e}:{step}")
    }
}

/// A slice end, or `None` when it reaches past the end of an axis of size `d`.
fn big(e: i64, d: i64) -> Option<i64> {
    if (d >= 0 && e >= d) || e >= 1 << 40 {
        None
    } else {
        Some(e)
    }
}

/// `dim * k` for a dim given as a literal or an expression.
fn scaled(dim: &str, k: i64) -> String {
    match dim.parse::<i64>() {
        Ok(v) => (v * k).to_string(),
        Err(_) => format!("{dim} * {k}"),
    }
}
