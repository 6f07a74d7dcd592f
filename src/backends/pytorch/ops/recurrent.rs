//! Recurrent layers: `nn.LSTM`, `nn.GRU` and `nn.RNN` (batch first; gate blocks reordered to
//! torch's through the state dict; final states reshaped from torch's `[D, N, H]` to the IR's
//! `[N, D·H]`) when the activations are torch's, the `Recurrent` helper module
//! (`templates/pytorch/recurrent.py.tera`) otherwise.
use super::{Ctx, Lower};
use crate::backends::pytorch::state::View;
use crate::backends::pytorch::Helper;
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
        c.entry("W", "W", View::AsIs, None)?;
        c.entry("R", "R", View::AsIs, None)?;
        if c.has("B") {
            c.entry("B", "B", View::AsIs, None)?;
        } else {
            let g = w.shape[1];
            c.fill("B", w.dtype, vec![dirs.len(), 2 * g], 0.0);
        }
        if c.has("P") {
            c.entry("P", "P", View::AsIs, None)?;
        } else {
            c.fill("P", w.dtype, vec![dirs.len(), 3 * h], 0.0);
        }
        let mut targets = names.clone();
        targets.resize(3, "_".to_string());
        c.line(format!("{} = {layer}({x})", targets.join(", ")));
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
    for (d, _) in dirs.iter().enumerate() {
        let suffix = if d == 1 { "_reverse" } else { "" };
        let gates = |offset: usize, len: usize| View::Gates {
            dir: d,
            offset,
            len,
            order: order.clone(),
        };
        c.entry(
            &format!("weight_ih_l0{suffix}"),
            "W",
            gates(0, gh * f),
            Some(vec![gh, f]),
        )?;
        c.entry(
            &format!("weight_hh_l0{suffix}"),
            "R",
            gates(0, gh * h),
            Some(vec![gh, h]),
        )?;
        if bias {
            c.entry(
                &format!("bias_ih_l0{suffix}"),
                "B",
                gates(0, gh),
                Some(vec![gh]),
            )?;
            c.entry(
                &format!("bias_hh_l0{suffix}"),
                "B",
                gates(gh, gh),
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
    c.line(format!("{targets} = {layer}({input})"));
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
