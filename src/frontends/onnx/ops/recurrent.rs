//! LSTM, GRU and RNN (as tf2onnx writes Keras recurrent layers). ONNX's weights already have
//! the IR's layout and gate orders (W [D, G·H, F], R [D, G·H, H], B [D, 2·G·H]; LSTM i, o, f,
//! c; GRU z, r, h), so only the activations and tensor layouts are mapped: the IR is
//! batch-first with directions concatenated on the last axis, ONNX time-first (layout 0) or
//! batch-first (layout 1, opset 14) with a direction axis; Transpose/Reshape nodes convert,
//! also for the initial states `initial_h`/`initial_c` ([D, N, H] or [N, D, H]), which become
//! the op's h0/c0 inputs ([N, D·H]) unless zero (graph inputs, computed or constant values).
//! Refused: sequence lengths other than all full (the IR has no per-sample length), cell
//! clipping, LSTM's input_forget, activation parameters, and activations the IR lacks.
use super::OpFn;
use crate::frontends::onnx::builder::Val;
use crate::frontends::onnx::node::Ctx;
use crate::interp::Value;
use crate::ir::dim;
use crate::ir::ops::shape_rules::dim_mul;
use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "LSTM" => |c| recurrent(c, "LSTM"),
        "GRU" => |c| recurrent(c, "GRU"),
        "RNN" => |c| recurrent(c, "RNN"),
        _ => return None,
    })
}

/// The IR name of an ONNX activation.
fn activation(name: &str) -> Result<&'static str> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "sigmoid" => "sigmoid",
        "tanh" => "tanh",
        "relu" => "relu",
        "hardsigmoid" => "hard_sigmoid",
        _ => bail!("activation {name} has no IR equivalent"),
    })
}

/// Fails unless the optional input `i` is absent or a constant equal to `ok` everywhere.
fn trivial(ctx: &Ctx, i: usize, what: &str, ok: impl Fn(f32) -> bool) -> Result<()> {
    if let Some(v) = ctx.const_input(i, what)? {
        if !v.to_f32().iter().all(|&x| ok(x)) {
            bail!("{what} other than the default has no IR equivalent");
        }
    }
    Ok(())
}

fn recurrent(ctx: &mut Ctx, op: &'static str) -> Result<Vec<Val>> {
    let x = ctx.input(0)?;
    let w = ctx.weight(1, "W")?;
    let r = ctx.weight(2, "R")?;
    let hidden = *r.info.shape.get(2).context("R must be [D, G·H, H]")? as i64;
    if ctx.opt_int("hidden_size")?.is_some_and(|h| h != hidden) {
        bail!("hidden_size does not match R {:?}", r.info.shape);
    }
    let direction = ctx.string("direction", "forward")?;
    let dirs: i64 = if direction == "bidirectional" { 2 } else { 1 };
    let batch_first = ctx.int("layout", 0)? == 1;
    if ctx.opt_float("clip")?.is_some() {
        bail!("cell clipping has no IR equivalent");
    }
    if ctx.int("input_forget", 0)? != 0 {
        bail!("input_forget = 1 has no IR equivalent");
    }
    if ctx.opt_floats("activation_alpha")?.is_some() || ctx.opt_floats("activation_beta")?.is_some()
    {
        bail!("activation parameters have no IR equivalent");
    }
    let x_rank = x.rank();
    if x_rank != 3 {
        bail!("X must be 3-d, got {}", x.ty());
    }
    let steps = x.shape()[if batch_first { 1 } else { 0 }];
    trivial(ctx, 4, "sequence_lens", |v| steps >= 0 && v as i64 == steps)?;
    let states = initial_states(ctx, op, batch_first, dirs, hidden, &x)?;
    let mut s = ctx
        .tmp(op, &op.to_lowercase())
        .int("hidden_size", hidden)
        .str("direction", &direction);
    // ONNX lists per direction [gate, candidate, output] activations (RNN: one).
    let defaults: &[&str] = match op {
        "LSTM" => &["Sigmoid", "Tanh", "Tanh"],
        "GRU" => &["Sigmoid", "Tanh"],
        _ => &["Tanh"],
    };
    let acts = match ctx.opt_strings("activations")? {
        Some(a) => a,
        None => (0..dirs)
            .flat_map(|_| defaults.iter().map(|a| a.to_string()))
            .collect(),
    };
    let per = defaults.len();
    if acts.len() != per * dirs as usize || acts[per..] != acts[..acts.len() - per] {
        bail!("activations {acts:?} differ between directions or have the wrong count");
    }
    if op == "LSTM" && acts[1] != acts[2] {
        bail!("LSTM with different cell and output activations has no IR equivalent");
    }
    if op == "RNN" {
        s = s.str("activation", activation(&acts[0])?);
    } else {
        s = s
            .str("recurrent_activation", activation(&acts[0])?)
            .str("activation", activation(&acts[1])?);
    }
    if op == "GRU" {
        s = s.flag(
            "linear_before_reset",
            ctx.int("linear_before_reset", 0)? != 0,
        );
    }
    s = s.weight("W", w).weight("R", r);
    if ctx.opt_input(3).is_some() {
        s = s.weight("B", ctx.weight(3, "B")?);
    }
    if op == "LSTM" && ctx.opt_input(7).is_some() {
        s = s.weight("P", ctx.weight(7, "P (peepholes)")?);
    }
    let xs = if batch_first {
        x
    } else {
        let t = ctx
            .tmp("Transpose", "x_batch_first")
            .ints("perm", vec![1, 0, 2])
            .input(&x);
        ctx.emit1(t)?
    };
    s = s.input(&xs);
    for state in &states {
        s = s.input(state);
    }
    let outs = ctx.emit(s)?;
    // y [N, T, D·H] -> Y [T, D, N, H] (layout 1: [N, T, D, H]); h, c [N, D·H] -> [D, N, H]
    // (layout 1: [N, D, H]).
    let mut vals = vec![];
    for (k, v) in outs.iter().enumerate() {
        if ctx.out_name(k).is_empty() {
            vals.push(v.clone()); // an output the model leaves unnamed is never read
            continue;
        }
        let (shape, perm) = if k == 0 {
            (vec![0, 0, dirs, hidden], vec![1, 2, 0, 3])
        } else {
            (vec![0, dirs, hidden], vec![1, 0, 2])
        };
        let reshape = if batch_first {
            ctx.spec_for(k, "Reshape")
        } else {
            ctx.tmp("Reshape", &format!("out{k}_directions"))
        };
        let mut y = ctx.emit1(reshape.ints("shape", shape).input(v))?;
        if !batch_first {
            let t = ctx.spec_for(k, "Transpose").ints("perm", perm).input(&y);
            y = ctx.emit1(t)?;
        }
        vals.push(y);
    }
    Ok(vals)
}

/// True when an initial state is absent or a constant zero everywhere. (Zeros shaped like a
/// symbolic batch are made at run time, by an Expand: a run-time state like any other.)
fn zero_state(v: Option<&Val>) -> Result<bool> {
    let zero = |v: &Value| v.to_f32().iter().all(|&x| x == 0.0);
    Ok(match v {
        None => true,
        Some(Val::Const(c)) => zero(&c.value()?),
        Some(Val::Dims(_) | Val::Runtime(_)) => false,
    })
}

/// The IR's h0 (and c0 for LSTM) inputs, [N, D·H], from `initial_h` (input 5) and
/// `initial_c` (input 6): none when every state is zero; an absent state beside a given one
/// is a zero constant, which needs the batch size.
fn initial_states(
    ctx: &mut Ctx,
    op: &str,
    batch_first: bool,
    dirs: i64,
    hidden: i64,
    x: &Val,
) -> Result<Vec<Val>> {
    let slots: &[(usize, &str)] = if op == "LSTM" {
        &[(5, "initial_h"), (6, "initial_c")]
    } else {
        &[(5, "initial_h")]
    };
    let given: Vec<Option<Val>> = slots.iter().map(|&(i, _)| ctx.opt_input(i)).collect();
    let mut all_zero = true;
    for g in &given {
        all_zero &= zero_state(g.as_ref())?;
    }
    if all_zero {
        return Ok(vec![]);
    }
    let width = dim_mul(dirs, hidden)?;
    let mut out = vec![];
    for (g, &(_, name)) in given.into_iter().zip(slots) {
        let Some(v) = g else {
            // Zeros [N, D·H]: a row expanded to the batch (folded when the batch is known).
            let n = x.shape()[if batch_first { 0 } else { 1 }];
            if n == dim::UNKNOWN {
                bail!(
                    "{name} is absent beside a given initial state, and the batch size is unknown"
                );
            }
            let row = ArrayD::<f32>::zeros(IxDyn(&[1, width as usize]));
            let row = ctx.constant(&format!("{name}_zero_row"), &Value::F32(row), x.dtype())?;
            let e = ctx
                .tmp("Expand", &format!("{name}_zeros"))
                .ints("shape", vec![n, width])
                .input(&row);
            out.push(ctx.emit1(e)?);
            continue;
        };
        let want = if batch_first {
            "[N, D, H]"
        } else {
            "[D, N, H]"
        };
        let dims = v.shape();
        let dir_axis = usize::from(batch_first);
        if dims.len() != 3
            || (dims[dir_axis] >= 0 && dims[dir_axis] != dirs)
            || (dims[2] >= 0 && dims[2] != hidden)
        {
            bail!(
                "{name} is {}; expected {want} with D = {dirs}, H = {hidden}",
                v.ty()
            );
        }
        let v = if batch_first {
            v
        } else {
            let t = ctx
                .tmp("Transpose", &format!("{name}_batch_first"))
                .ints("perm", vec![1, 0, 2])
                .input(&v);
            ctx.emit1(t)?
        };
        let r = ctx
            .tmp("Reshape", name)
            .ints("shape", vec![0, width])
            .input(&v);
        out.push(ctx.emit1(r)?);
    }
    Ok(out)
}
