//! Recurrent layers: `nn.LSTM`, `nn.GRU` and `nn.RNN` (batch first; gate blocks reordered to
//! torch's through the state dict; final states reshaped from torch's `[D, N, H]` to the IR's
//! `[N, D·H]`, and the initial states h0/c0 the other way) when the activations are torch's, the `Recurrent` helper module
//! (`templates/pytorch/recurrent.py.tera`) otherwise.
use super::{Ctx, Lower};
use crate::backends::pytorch::Helper;
use crate::weights::derived::Step;
use crate::weights::TensorInfo;
use anyhow::{bail, Result};

pub fn lookup(op: &str) -> Option<Lower> {
    Some(match op {
        "LSTM" | "GRU" | "RNN" => recurrent,
        _ => return None,
    })
}

fn recurrent(c: &mut Ctx) -> Result<()> {
    let op = c.node.op.clone();
    let ty = c.in_ty(0)?;
    if ty.rank() != 3 {
        bail!("expects a [N, T, F] input");
    }
    let w = c.info("W")?;
    if w.shape.len() != 3 {
        bail!("weight 'W' of shape {:?} is not [D, G·H, F]", w.shape);
    }
    let (f, h) = (w.shape[2], c.a.int("hidden_size")? as usize);
    let direction = c.a.str("direction")?;
    let dirs: Vec<&str> = match direction.as_str() {
        "bidirectional" => vec!["forward", "reverse"],
        d => vec![if d == "reverse" { "reverse" } else { "forward" }],
    };
    let act = c.a.str("activation")?;
    let gate = if op == "RNN" {
        act.clone()
    } else {
        c.a.str("recurrent_activation")?
    };
    let lbr = op == "GRU" && c.a.bool("linear_before_reset")?;
    let standard = match op.as_str() {
        "LSTM" => act == "tanh" && gate == "sigmoid" && !c.has("P"),
        "GRU" => act == "tanh" && gate == "sigmoid" && lbr,
        _ => act == "tanh" || act == "relu",
    };
    let uses = c.e.graph.consumers();
    let used = |k: usize| uses.get(&c.node.output(k)).copied().unwrap_or(0) > 0;
    let n_out = if op == "LSTM" { 3 } else { 2 };
    let names: Vec<String> = (0..n_out)
        .map(|k| match k {
            _ if !used(k) => "_".to_string(),
            0 => c.id.clone(),
            1 => c.local("h"),
            _ => c.local("c"),
        })
        .collect();
    let x = c.x(0)?;
    let states: Vec<String> = (1..c.node.inputs.len())
        .map(|k| c.x(k))
        .collect::<Result<_>>()?;
    if !standard {
        c.e.helpers.insert(Helper::Recurrent);
        let list = dirs
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let layer = c.layer(format!(
            "Recurrent(\"{op}\", {f}, {h}, [{list}], \"{act}\", \"{gate}\", {})",
            if lbr { "True" } else { "False" }
        ));
        c.entry("W", "W", None)?;
        c.entry("R", "R", None)?;
        if c.has("B") {
            c.entry("B", "B", None)?;
        } else {
            let g = w.shape[1];
            c.fill("B", w.dtype, vec![dirs.len(), 2 * g], 0.0)?;
        }
        if c.has("P") {
            c.entry("P", "P", None)?;
        } else {
            c.fill("P", w.dtype, vec![dirs.len(), 3 * h], 0.0)?;
        }
        let mut targets = names.clone();
        targets.resize(3, "_".to_string());
        let args: Vec<String> = std::iter::once(x).chain(states).collect();
        c.line(format!(
            "{} = {layer}({})",
            targets.join(", "),
            args.join(", ")
        ));
        for (k, n) in names.iter().enumerate() {
            if n != "_" {
                c.bind(k, n.clone());
            }
        }
        return Ok(());
    }
    // nn.LSTM / nn.GRU / nn.RNN: gates reordered to torch's (LSTM i, f, g, o; GRU r, z, n).
    let order: Vec<usize> = match op.as_str() {
        "LSTM" => vec![0, 2, 3, 1],
        "GRU" => vec![1, 0, 2],
        _ => vec![0],
    };
    let bias = c.has("B");
    let bidir = dirs.len() == 2;
    let mut args = vec![f.to_string(), h.to_string(), "batch_first=True".to_string()];
    if op == "RNN" && act == "relu" {
        args.push("nonlinearity=\"relu\"".into());
    }
    if !bias {
        args.push("bias=False".into());
    }
    if bidir {
        args.push("bidirectional=True".into());
    }
    let layer = c.layer(format!("nn.{op}({})", args.join(", ")));
    let gh = order.len() * h;
    let r = c.info("R")?;
    let b = if bias { Some(c.info("B")?) } else { None };
    for d in 0..dirs.len() {
        let suffix = if d == 1 { "_reverse" } else { "" };
        let gates = |weight: &TensorInfo, offset: usize, len: usize| {
            direction_gates(weight, d, offset, len, &order)
        };
        c.derived_entry(
            &format!("weight_ih_l0{suffix}"),
            "W",
            gates(&w, 0, gh * f),
            Some(vec![gh, f]),
        )?;
        c.derived_entry(
            &format!("weight_hh_l0{suffix}"),
            "R",
            gates(&r, 0, gh * h),
            Some(vec![gh, h]),
        )?;
        if let Some(b) = &b {
            c.derived_entry(
                &format!("bias_ih_l0{suffix}"),
                "B",
                gates(b, 0, gh),
                Some(vec![gh]),
            )?;
            c.derived_entry(
                &format!("bias_hh_l0{suffix}"),
                "B",
                gates(b, gh, gh),
                Some(vec![gh]),
            )?;
        }
    }
    let reverse = dirs == ["reverse"];
    let input = if reverse { format!("{x}.flip(1)") } else { x };
    // torch's final states are [D, N, H]; the IR's are [N, D·H].
    let raw: Vec<String> = (0..n_out)
        .map(|k| {
            if names[k] == "_" {
                "_".to_string()
            } else if k == 0 && !reverse {
                names[0].clone()
            } else {
                c.local(&format!("{}_raw", ["y", "h", "c"][k]))
            }
        })
        .collect();
    let targets = if op == "LSTM" {
        format!("{}, ({}, {})", raw[0], raw[1], raw[2])
    } else {
        format!("{}, {}", raw[0], raw[1])
    };
    // The IR's initial states [N, D·H] are torch's [D, N, H]; LSTM takes both or neither.
    let mut torch_states = vec![];
    for (k, s) in states.iter().enumerate() {
        let name = c.local(["h0", "c0"][k]);
        c.line(format!(
            "{name} = {s}.unflatten(1, ({}, {h})).transpose(0, 1).contiguous()",
            dirs.len()
        ));
        torch_states.push(name);
    }
    if op == "LSTM" && torch_states.len() == 1 {
        torch_states.push(format!("torch.zeros_like({})", torch_states[0]));
    }
    let call = match (op.as_str(), &torch_states[..]) {
        (_, []) => input,
        ("LSTM", [h0, c0]) => format!("{input}, ({h0}, {c0})"),
        (_, [h0, ..]) => format!("{input}, {h0}"),
    };
    c.line(format!("{targets} = {layer}({call})"));
    for k in 0..n_out {
        if names[k] == "_" {
            continue;
        }
        if k == 0 {
            if reverse {
                c.line(format!("{} = {}.flip(1)", names[0], raw[0]));
            }
        } else {
            c.line(format!(
                "{} = {}.transpose(0, 1).flatten(1)",
                names[k], raw[k]
            ));
        }
        c.bind(k, names[k].clone());
    }
    Ok(())
}

/// The steps making elements `offset..offset + len` of direction `dir` of a recurrent weight
/// (`[D, G·H, …]`, or a bias `[D, 2·G·H]`) a vector with its gate blocks reordered so that block
/// `i` is block `order[i]` of the source. The weight is cut into rows as long as the slice
/// allows (one row for a whole block) and the slice's rows taken.
fn direction_gates(
    weight: &TensorInfo,
    dir: usize,
    offset: usize,
    len: usize,
    order: &[usize],
) -> Vec<Step> {
    let numel = weight.numel();
    let start = dir * (numel / weight.shape.first().copied().unwrap_or(1).max(1)) + offset;
    let row = gcd(gcd(start, len), numel).max(1);
    vec![
        Step::Reshape(vec![numel / row, row]),
        Step::Rows((start / row..(start + len) / row).collect()),
        Step::Reshape(vec![len]),
        Step::Gates {
            axis: 0,
            order: order.to_vec(),
        },
    ]
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::direction_gates;
    use crate::weights::derived::{Derived, DerivedWeights};
    use crate::weights::{MemoryWeights, Tensor, WeightReader};

    /// Elements `offset..offset + len` of direction `dir` of `shape` (holding 0, 1, 2, …) with
    /// `order` applied to their gate blocks.
    fn gates(shape: &[usize], dir: usize, offset: usize, len: usize, order: &[usize]) -> Vec<f32> {
        let n: usize = shape.iter().product();
        let values: Vec<f32> = (0..n).map(|v| v as f32).collect();
        let weight = Tensor::from_f32(shape.to_vec(), &values).expect("sized to the shape");
        let steps = direction_gates(&weight.info, dir, offset, len, order);
        let mut inner = MemoryWeights::default();
        inner.insert("rnn", "B", weight);
        let mut derived = DerivedWeights::over(&inner);
        let entry = Derived {
            steps,
            ..Derived::weight("rnn", "B")
        };
        derived.insert("rnn", "entry", entry);
        derived.read("rnn", "entry").expect("derives").to_f32()
    }

    fn range(blocks: &[std::ops::Range<usize>]) -> Vec<f32> {
        blocks.iter().cloned().flatten().map(|v| v as f32).collect()
    }

    #[test]
    fn the_reverse_recurrent_bias_of_a_gru_in_torch_order() {
        // [D, 2·G·H] with G = 3, H = 4: the reverse direction's recurrent half is 36..48.
        let got = gates(&[2, 24], 1, 12, 12, &[1, 0, 2]);
        assert_eq!(got, range(&[40..44, 36..40, 44..48]));
    }

    #[test]
    fn a_slice_that_is_not_a_whole_row_is_taken_in_shorter_rows() {
        let got = gates(&[1, 10], 0, 2, 6, &[1, 0]);
        assert_eq!(got, range(&[5..8, 2..5]));
    }
}
