//! LSTM, GRU and RNN. The IR's weights already have ONNX's layout and gate orders (W
//! [D, G·H, F], R [D, G·H, H], B [D, 2·G·H]; LSTM i, o, f, c; GRU z, r, h). The IR is
//! batch-first with directions concatenated on the last axis; ONNX (layout 0) is time-first
//! with a direction axis, so Transpose and Reshape nodes convert around the op, also the initial
//! states h0/c0 ([N, D·H] → `initial_h`/`initial_c` [D, N, H]).
use super::{Lower, A};
use crate::backends::onnx::builder::Ctx;
use anyhow::Result;

pub fn find(op: &str) -> Option<Lower> {
    Some(match op {
        "LSTM" | "GRU" | "RNN" => recurrent,
        _ => return None,
    })
}

/// ONNX activation name and its (alpha, beta) when it takes them.
fn activation(name: &str) -> (&'static str, Option<(f32, f32)>) {
    match name {
        "sigmoid" => ("Sigmoid", None),
        "relu" => ("Relu", None),
        "hard_sigmoid" => ("HardSigmoid", Some((0.2, 0.5))),
        "linear" => ("Affine", Some((1.0, 0.0))),
        _ => ("Tanh", None),
    }
}

fn recurrent(c: &mut Ctx) -> Result<()> {
    let op = c.node.op.clone();
    let hidden = c.a.int("hidden_size")?;
    let direction = c.a.str("direction")?;
    let dirs = if direction == "bidirectional" { 2 } else { 1 };
    let act = c.a.str("activation")?;
    let per_dir: Vec<String> = match op.as_str() {
        "LSTM" => vec![c.a.str("recurrent_activation")?, act.clone(), act],
        "GRU" => vec![c.a.str("recurrent_activation")?, act],
        _ => vec![act],
    };
    let (mut names, mut alphas, mut betas) = (vec![], vec![], vec![]);
    for _ in 0..dirs {
        for a in &per_dir {
            let (name, ab) = activation(a);
            names.push(name.to_string());
            if let Some((al, be)) = ab {
                alphas.push(al);
                betas.push(be);
            }
        }
    }
    let mut attrs = vec![
        A::I("hidden_size", hidden),
        A::S("direction", direction),
        A::Ss("activations", names),
    ];
    if !alphas.is_empty() {
        attrs.push(A::Fs("activation_alpha", alphas));
        attrs.push(A::Fs("activation_beta", betas));
    }
    if op == "GRU" {
        attrs.push(A::I(
            "linear_before_reset",
            c.a.bool("linear_before_reset")? as i64,
        ));
    }
    let x = c.x(0)?;
    let xt = c.op("Transpose", &[&x], vec![A::Is("perm", vec![1, 0, 2])]);
    let w = c.weight("W")?;
    let r = c.weight("R")?;
    let mut inputs = vec![xt, w, r];
    if c.has_weight("B") {
        inputs.push(c.weight("B")?);
    }
    // B, sequence_lens, initial_h and initial_c (possibly absent) come before P.
    let states = c.node.inputs.len() - 1;
    if states > 0 || c.has_weight("P") {
        inputs.resize(5, String::new());
    }
    for k in 1..=states {
        let v = c.x(k)?;
        let shape = c.ints(&format!("state{k}_shape"), &[0, dirs, hidden]);
        let r = c.op("Reshape", &[&v, &shape], vec![]);
        inputs.push(c.op("Transpose", &[&r], vec![A::Is("perm", vec![1, 0, 2])]));
    }
    if c.has_weight("P") {
        inputs.resize(7, String::new());
        inputs.push(c.weight("P")?);
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let n_out = if op == "LSTM" { 3 } else { 2 };
    let outs: Vec<String> = (0..n_out).map(|k| c.tmp(&format!("onnx_out{k}"))).collect();
    let out_refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    c.emit(&op, &refs, &out_refs, attrs);
    // Y [T, D, N, H] → [N, T, D, H] → [N, T, D·H]; Y_h, Y_c [D, N, H] → [N, D, H] → [N, D·H].
    for (k, o) in outs.iter().enumerate() {
        let (perm, shape) = if k == 0 {
            (vec![2, 0, 1, 3], vec![0, 0, -1])
        } else {
            (vec![1, 0, 2], vec![0, -1])
        };
        let t = c.op("Transpose", &[o], vec![A::Is("perm", perm)]);
        let s = c.ints(&format!("out{k}_shape"), &shape);
        let y = c.y(k)?;
        c.emit("Reshape", &[&t, &s], &[&y], vec![]);
    }
    Ok(())
}
