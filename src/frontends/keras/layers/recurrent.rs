//! SimpleRNN, LSTM, GRU, the Bidirectional wrapper and TimeDistributed. Keras kernels
//! ([F, G·H] and [H, G·H], gates i f c o for LSTM and z r h for GRU) are converted at read time
//! to the IR's [D, G·H, F] / [D, G·H, H] with LSTM gates i o f c; biases become [D, 2·G·H]
//! (GRU with reset_after keeps its recurrent bias, the others get zeros). An `initial_state`
//! (Keras 3: the keyword argument; Keras 2: the call's inputs after the first) becomes the op's
//! h0 (and c0) inputs; Bidirectional's [h_fw, (c_fw,) h_bw, (c_bw)] are concatenated to [N, 2·H].
use super::super::convert::Cx;
use super::super::h5::Var;
use super::super::weights::{recurrent_bias, recurrent_matrix};
use super::{Cfg, LayerCall, RArg};
use crate::ir::{AttrValue, TensorRef};
use crate::weights::derived::Source;
use anyhow::{bail, Context, Result};
use serde_json::Value as Json;

/// The IR op and gate order of a Keras recurrent class.
fn kind(class: &str) -> Result<(&'static str, &'static [usize])> {
    Ok(match class {
        "LSTM" => ("LSTM", &[0, 3, 1, 2]),
        "GRU" => ("GRU", &[0, 1, 2]),
        "SimpleRNN" => ("RNN", &[0]),
        other => bail!("{other} is not a recurrent layer"),
    })
}

fn check_supported(cfg: &Cfg) -> Result<()> {
    for flag in ["stateful", "time_major"] {
        if cfg.bool_or(flag, false)? {
            bail!("{flag}=True is not supported");
        }
    }
    Ok(())
}

/// The call's input and the tensors of its initial state, in Keras's order ([h, c] per
/// direction).
fn input_and_state(l: &LayerCall) -> Result<(TensorRef, Vec<TensorRef>)> {
    let Some((x, rest)) = l.inputs.split_first() else {
        bail!("expects an input");
    };
    // Keras 2 records `initial_state: null` beside states passed as inputs.
    let states = match l.kwargs.get("initial_state").map(RArg::tensors) {
        Some(s) if !s.is_empty() => s.into_iter().cloned().collect(),
        _ => rest.to_vec(),
    };
    Ok((x.clone(), states))
}

/// The IR's state inputs [h0, (c0)] from Keras's states: `per_dir` of them per direction,
/// directions concatenated on the last axis.
fn ir_states(
    cx: &mut Cx,
    l: &LayerCall,
    states: Vec<TensorRef>,
    per_dir: usize,
    dirs: usize,
) -> Result<Vec<TensorRef>> {
    if states.is_empty() {
        return Ok(states);
    }
    if states.len() != per_dir * dirs {
        bail!(
            "initial_state has {} tensors; expected {}",
            states.len(),
            per_dir * dirs
        );
    }
    if dirs == 1 {
        return Ok(states);
    }
    (0..per_dir)
        .map(|k| {
            let parts = [states[k].clone(), states[per_dir + k].clone()];
            let name = l.sub(&format!("initial_{}", ["h", "c"][k]));
            cx.op(&name, "Concat", &parts, vec![("axis", AttrValue::Int(-1))])
        })
        .collect()
}

/// Adds the IR recurrent node for a Keras layer of `class` with config `cfg` on `inputs` (x,
/// then the IR's initial states); `dirs` holds the weight variables of each direction (kernel,
/// recurrent kernel, bias?).
fn recurrent_node(
    cx: &mut Cx,
    name: &str,
    class: &str,
    cfg: &Cfg,
    inputs: &[TensorRef],
    direction: &str,
    dirs: &[Vec<&Var>],
) -> Result<TensorRef> {
    check_supported(cfg)?;
    let (op, gates) = kind(class)?;
    let mut attrs = vec![
        ("hidden_size", AttrValue::Int(cfg.int("units")?)),
        ("direction", AttrValue::Str(direction.into())),
        (
            "activation",
            AttrValue::Str(super::activation::name_of(cfg.get("activation"))?),
        ),
    ];
    if op != "RNN" {
        let ra = super::activation::name_of(cfg.get("recurrent_activation"))?;
        if ra == "hard_sigmoid" && cx.keras3 {
            bail!(
                "recurrent_activation hard_sigmoid (Keras 3's relu6(x + 3) / 6) is not supported"
            );
        }
        attrs.push(("recurrent_activation", AttrValue::Str(ra)));
    }
    let reset_after = class == "GRU" && cfg.bool_or("reset_after", true)?;
    if class == "GRU" {
        attrs.push(("linear_before_reset", AttrValue::Bool(reset_after)));
    }
    let node = cx.op(name, op, inputs, attrs)?;
    // Variable `i` (kernel, recurrent kernel, bias) of each direction.
    let sources = |i: usize| -> Result<Vec<Source>> {
        dirs.iter()
            .map(|d| {
                let var = d
                    .get(i)
                    .with_context(|| format!("weight {i} of the recurrent layer is missing"))?;
                Ok(Source::File(var.path.clone()))
            })
            .collect()
    };
    cx.derived(&node, "W", recurrent_matrix(sources(0)?, gates));
    cx.derived(&node, "R", recurrent_matrix(sources(1)?, gates));
    if cfg.bool_or("use_bias", true)? {
        let units = usize::try_from(cfg.int("units")?).context("units must not be negative")?;
        let bias = recurrent_bias(sources(2)?, gates, units, reset_after);
        cx.derived(&node, "B", bias);
    }
    Ok(node)
}

/// Reverses a sequence [N, T, F] along time.
fn reverse_time(cx: &mut Cx, name: &str, y: TensorRef) -> Result<TensorRef> {
    cx.op(
        name,
        "Slice",
        &[y],
        vec![
            ("starts", AttrValue::Ints(vec![-1])),
            ("ends", AttrValue::Ints(vec![-i64::MAX])),
            ("axes", AttrValue::Ints(vec![1])),
            ("steps", AttrValue::Ints(vec![-1])),
        ],
    )
}

/// SimpleRNN, LSTM and GRU: output (sequence or last), then the states if return_state.
fn unidirectional(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let backwards = l.cfg.bool_or("go_backwards", false)?;
    let direction = if backwards { "reverse" } else { "forward" };
    let vars: Vec<&Var> = l.vars.iter().collect();
    let per_dir = if l.class == "LSTM" { 2 } else { 1 };
    let (x, states) = input_and_state(l)?;
    let mut inputs = vec![x];
    inputs.extend(ir_states(cx, l, states, per_dir, 1)?);
    let node = recurrent_node(cx, &l.name, l.class, &l.cfg, &inputs, direction, &[vars])?;
    let mut out = vec![if l.cfg.bool_or("return_sequences", false)? {
        let y = TensorRef::new(node.node.clone(), 0);
        if backwards {
            reverse_time(cx, &l.sub("reversed"), y)?
        } else {
            y
        }
    } else {
        TensorRef::new(node.node.clone(), 1)
    }];
    if l.cfg.bool_or("return_state", false)? {
        out.push(TensorRef::new(node.node.clone(), 1));
        if l.class == "LSTM" {
            out.push(TensorRef::new(node.node.clone(), 2));
        }
    }
    Ok(out)
}

pub fn simple_rnn(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    unidirectional(cx, l)
}

pub fn lstm(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    unidirectional(cx, l)
}

pub fn gru(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    unidirectional(cx, l)
}

/// Splits [N, …, 2H] into its forward and backward halves.
fn halves(cx: &mut Cx, name: &str, t: TensorRef, h: i64) -> Result<(TensorRef, TensorRef)> {
    let s = cx.op(
        name,
        "Split",
        &[t],
        vec![
            ("axis", AttrValue::Int(-1)),
            ("split", AttrValue::Ints(vec![h, h])),
        ],
    )?;
    Ok((TensorRef::new(s.node.clone(), 0), TensorRef::new(s.node, 1)))
}

/// Bidirectional(LSTM | GRU | SimpleRNN) with merge_mode concat, sum, mul, ave or None.
pub fn bidirectional(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let inner = l.cfg.get("layer").context("config 'layer' is missing")?;
    let class = inner
        .get("class_name")
        .and_then(Json::as_str)
        .context("the wrapped layer has no class")?;
    let icfg = Cfg(inner
        .get("config")
        .context("the wrapped layer has no config")?);
    if icfg.bool_or("go_backwards", false)? {
        bail!("a wrapped layer with go_backwards=True is not supported");
    }
    if let Some(b) = l.cfg.get("backward_layer") {
        let bcfg = Cfg(b.get("config").unwrap_or(&Json::Null));
        if bcfg.get("units") != icfg.get("units")
            || b.get("class_name").and_then(Json::as_str) != Some(class)
        {
            bail!("a backward_layer that differs from the forward layer is not supported");
        }
    }
    let side = |prefix: &str| -> Vec<&Var> {
        l.vars
            .iter()
            .filter(|v| v.local.starts_with(prefix))
            .collect()
    };
    let dirs = [side("forward"), side("backward")];
    let per_dir = if class == "LSTM" { 2 } else { 1 };
    let (x, states) = input_and_state(l)?;
    let mut inputs = vec![x];
    inputs.extend(ir_states(cx, l, states, per_dir, 2)?);
    let node = recurrent_node(cx, &l.name, class, &icfg, &inputs, "bidirectional", &dirs)?;
    let h = icfg.int("units")?;
    let seq = icfg.bool_or("return_sequences", false)?;
    let out = TensorRef::new(node.node.clone(), if seq { 0 } else { 1 });
    let mode = match l.cfg.0.get("merge_mode") {
        Some(Json::Null) => "none".to_string(),
        _ => l.cfg.str_or("merge_mode", "concat")?,
    };
    let mut outputs: Vec<TensorRef> = match mode.as_str() {
        "concat" => vec![out],
        _ => {
            let (fw, bw) = halves(cx, &l.sub("split"), out, h)?;
            match mode.as_str() {
                "sum" => vec![cx.op(&l.sub("sum"), "Add", &[fw, bw], vec![])?],
                "mul" => vec![cx.op(&l.sub("mul"), "Mul", &[fw, bw], vec![])?],
                "ave" => {
                    let s = cx.op(&l.sub("sum"), "Add", &[fw, bw], vec![])?;
                    let k = cx.scalar(&l.sub("half"), 0.5)?;
                    vec![cx.op(&l.sub("ave"), "Mul", &[s, k], vec![])?]
                }
                "none" => vec![fw, bw],
                other => bail!("merge_mode '{other}' is not supported"),
            }
        }
    };
    if icfg.bool_or("return_state", false)? {
        let (fh, bh) = halves(cx, &l.sub("h"), TensorRef::new(node.node.clone(), 1), h)?;
        if class == "LSTM" {
            let (fc, bc) = halves(cx, &l.sub("c"), TensorRef::new(node.node.clone(), 2), h)?;
            outputs.extend([fh, fc, bh, bc]);
        } else {
            outputs.extend([fh, bh]);
        }
    }
    Ok(outputs)
}

/// TimeDistributed: the wrapped layer on [N·T, …], reshaped back to [N, T, …]; a Dense is
/// applied directly (it works on any rank).
pub fn time_distributed(cx: &mut Cx, l: &LayerCall) -> Result<Vec<TensorRef>> {
    let inner = l.cfg.get("layer").context("config 'layer' is missing")?;
    let class = inner
        .get("class_name")
        .and_then(Json::as_str)
        .context("the wrapped layer has no class")?;
    let x = l.input()?;
    let shape = cx.shape(&x)?;
    let call = |inputs: Vec<TensorRef>, name: String| LayerCall {
        name,
        class,
        module: None,
        cfg: Cfg(inner.get("config").unwrap_or(&Json::Null)),
        inputs,
        args: vec![],
        kwargs: Default::default(),
        vars: l.vars.clone(),
    };
    if class == "Dense" {
        return super::convert(cx, &call(vec![x], l.name.clone()));
    }
    if shape.len() < 3 || shape[1..].iter().any(|&d| d < 0) {
        bail!(
            "TimeDistributed needs known time and feature sizes, got {shape:?}: pass --inputShape"
        );
    }
    let mut merged = vec![-1];
    merged.extend(&shape[2..]);
    let flat = cx.op(
        &l.sub("merge_time"),
        "Reshape",
        &[x],
        vec![("shape", AttrValue::Ints(merged))],
    )?;
    let ys = super::convert(cx, &call(vec![flat], l.sub("inner")))?;
    ys.into_iter()
        .enumerate()
        .map(|(i, y)| {
            let ys = cx.shape(&y)?;
            let mut split = vec![-1, shape[1]];
            split.extend(&ys[1..]);
            let name = if i == 0 {
                l.name.clone()
            } else {
                l.sub(&format!("output_{i}"))
            };
            cx.op(
                &name,
                "Reshape",
                &[y],
                vec![("shape", AttrValue::Ints(split))],
            )
        })
        .collect()
}
