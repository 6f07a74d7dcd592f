//! LSTM, GRU and simple RNN with ONNX equations and batch-first inputs; the initial states h0
//! and c0 (optional inputs, zeros when absent) are [N, D·H] like the final ones.
//!
//! Weights: W [D, G·H, F], R [D, G·H, H], B [D, 2·G·H] (input then recurrent biases, zeros
//! when absent); gates LSTM i, o, f, c; GRU z, r, h. Bidirectional outputs concatenate
//! [forward, reverse] on the last axis, the reverse outputs in forward time order.
use super::linalg::gemm;
use super::{OpCtx, OpFn, Value};
use anyhow::{bail, Result};
use ndarray::{s, Array2, Array3, ArrayView2, Axis};

pub fn lookup(op: &str) -> Option<OpFn> {
    Some(match op {
        "LSTM" => lstm,
        "GRU" => gru,
        "RNN" => rnn,
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Lstm,
    Gru,
    Rnn,
}

fn act(name: &str) -> Result<fn(f32) -> f32> {
    Ok(match name {
        "tanh" => f32::tanh,
        "relu" => |v| if v < 0.0 { 0.0 } else { v },
        "sigmoid" => |v| 1.0 / (1.0 + (-v).exp()),
        "hard_sigmoid" => |v| (0.2 * v + 0.5).clamp(0.0, 1.0),
        "linear" => |v| v,
        other => bail!("unknown activation '{other}'"),
    })
}

/// Per-direction weights.
struct Dir {
    w: Array2<f32>,
    r: Array2<f32>,
    wb: Vec<f32>,
    rb: Vec<f32>,
}

fn run(ctx: &OpCtx, inputs: Vec<Value>, kind: Kind) -> Result<Vec<Value>> {
    let mut inputs = inputs.into_iter();
    let x = match inputs.next() {
        Some(x) => x.into_f32()?,
        None => bail!("expects an input"),
    };
    if x.ndim() != 3 {
        bail!("expects a [N, T, F] input, got shape {:?}", x.shape());
    }
    let (n, t, f) = (x.shape()[0], x.shape()[1], x.shape()[2]);
    let a = &ctx.attrs;
    let h = a.int("hidden_size")?;
    if h <= 0 {
        bail!("hidden_size must be positive");
    }
    let h = h as usize;
    let direction = a.str("direction")?;
    let dirs: Vec<bool> = match direction.as_str() {
        "forward" => vec![false],
        "reverse" => vec![true],
        "bidirectional" => vec![false, true],
        other => bail!("unknown direction '{other}'"),
    };
    let d = dirs.len();
    // Initial states [N, D·H]: h0, then (LSTM) c0.
    let given: Vec<Value> = inputs.collect();
    let names: &[&str] = if kind == Kind::Lstm {
        &["h0", "c0"]
    } else {
        &["h0"]
    };
    if given.len() > names.len() {
        bail!(
            "takes at most {} initial state(s), got {}",
            names.len(),
            given.len()
        );
    }
    let mut states = vec![];
    for (v, name) in given.into_iter().zip(names) {
        let v = v.into_f32()?;
        if v.shape() != [n, d * h] {
            bail!(
                "initial state {name} has shape {:?}; expected [{n}, {}]",
                v.shape(),
                d * h
            );
        }
        states.push(v.into_dimensionality::<ndarray::Ix2>()?);
    }
    let state = |k: usize, di: usize| match states.get(k) {
        Some(s) => s.slice(s![.., di * h..(di + 1) * h]).to_owned(),
        None => Array2::<f32>::zeros((n, h)),
    };
    let g = match kind {
        Kind::Lstm => 4,
        Kind::Gru => 3,
        Kind::Rnn => 1,
    };
    let gh = g * h;
    let w = ctx.weight_f32("W", &[d, gh, f])?;
    let r = ctx.weight_f32("R", &[d, gh, h])?;
    let b = match ctx.opt_weight("B")? {
        Some(b) => {
            let arr = b.as_f32()?;
            if arr.shape() != [d, 2 * gh] {
                bail!(
                    "weight 'B' has shape {:?}; expected [{d}, {}]",
                    arr.shape(),
                    2 * gh
                );
            }
            Some(arr.clone())
        }
        None => None,
    };
    let (w, r) = (w.as_f32()?, r.as_f32()?);
    // LSTM peepholes [D, 3·H] (i, o, f), zeros when absent.
    let p = match kind {
        Kind::Lstm => ctx
            .opt_weight("P")?
            .map(|p| -> Result<_> {
                let arr = p.as_f32()?;
                if arr.shape() != [d, 3 * h] {
                    bail!(
                        "weight 'P' has shape {:?}; expected [{d}, {}]",
                        arr.shape(),
                        3 * h
                    );
                }
                Ok(arr.clone())
            })
            .transpose()?,
        _ => None,
    };
    let act_main = act(&a.str("activation")?)?;
    let act_gate = match kind {
        Kind::Rnn => act_main,
        _ => act(&a.str("recurrent_activation")?)?,
    };
    let lbr = kind == Kind::Gru && a.bool("linear_before_reset")?;
    let xs = x.as_standard_layout();
    let x2 = xs.to_shape((n * t, f))?;
    let mut y = Array3::<f32>::zeros((n, t, d * h));
    let mut h_out = Array2::<f32>::zeros((n, d * h));
    let mut c_out = Array2::<f32>::zeros((n, d * h));
    for (di, &reverse) in dirs.iter().enumerate() {
        let dir = Dir {
            w: w.index_axis(Axis(0), di).into_dimensionality()?.to_owned(),
            r: r.index_axis(Axis(0), di).into_dimensionality()?.to_owned(),
            wb: b
                .as_ref()
                .map_or(vec![0.0; gh], |b| b.slice(s![di, ..gh]).to_vec()),
            rb: b
                .as_ref()
                .map_or(vec![0.0; gh], |b| b.slice(s![di, gh..]).to_vec()),
        };
        let peep = p
            .as_ref()
            .map_or(vec![0.0; 3 * h], |p| p.slice(s![di, ..]).to_vec());
        // Input projections for every step at once: [N·T, G·H] = x · Wᵀ + Wb.
        let mut xw = Array2::<f32>::zeros((n * t, gh));
        gemm(x2.view(), dir.w.t(), 0.0, xw.view_mut());
        for mut row in xw.rows_mut() {
            row.iter_mut().zip(&dir.wb).for_each(|(v, b)| *v += b);
        }
        let mut hs = state(0, di);
        let mut cs = state(1, di);
        let mut hr = Array2::<f32>::zeros((n, gh));
        for step in 0..t {
            let ti = if reverse { t - 1 - step } else { step };
            gemm(hs.view(), dir.r.t(), 0.0, hr.view_mut());
            for bi in 0..n {
                let xr = xw.row(bi * t + ti);
                let hrow = hr.row(bi);
                let (xr, hrow) = (xr.as_slice().expect("row"), hrow.as_slice().expect("row"));
                let pre = |k: usize, j: usize| xr[k * h + j] + hrow[k * h + j] + dir.rb[k * h + j];
                let out = &mut y.slice_mut(s![bi, ti, di * h..(di + 1) * h]);
                match kind {
                    Kind::Lstm => {
                        for j in 0..h {
                            let prev = cs[[bi, j]];
                            let i = act_gate(pre(0, j) + peep[j] * prev);
                            let fg = act_gate(pre(2, j) + peep[2 * h + j] * prev);
                            let cc = act_main(pre(3, j));
                            let c = fg * prev + i * cc;
                            let o = act_gate(pre(1, j) + peep[h + j] * c);
                            cs[[bi, j]] = c;
                            out[j] = o * act_main(c);
                        }
                    }
                    Kind::Rnn => {
                        for j in 0..h {
                            out[j] = act_main(pre(0, j));
                        }
                    }
                    Kind::Gru => {
                        let z: Vec<f32> = (0..h).map(|j| act_gate(pre(0, j))).collect();
                        let rg: Vec<f32> = (0..h).map(|j| act_gate(pre(1, j))).collect();
                        // The candidate's recurrent term: r ⊙ (H·Rhᵀ + Rbh) when
                        // linear_before_reset, else (r ⊙ H)·Rhᵀ + Rbh.
                        let rec: Vec<f32> = if lbr {
                            (0..h)
                                .map(|j| rg[j] * (hrow[2 * h + j] + dir.rb[2 * h + j]))
                                .collect()
                        } else {
                            let rh: Vec<f32> = (0..h).map(|j| rg[j] * hs[[bi, j]]).collect();
                            let rh = ArrayView2::from_shape((1, h), &rh)?;
                            let proj = rh.dot(&dir.r.slice(s![2 * h.., ..]).t());
                            (0..h).map(|j| proj[[0, j]] + dir.rb[2 * h + j]).collect()
                        };
                        for j in 0..h {
                            let hh = act_main(xr[2 * h + j] + rec[j]);
                            out[j] = (1.0 - z[j]) * hh + z[j] * hs[[bi, j]];
                        }
                    }
                }
            }
            // The new state is this step's output.
            for bi in 0..n {
                for j in 0..h {
                    hs[[bi, j]] = y[[bi, ti, di * h + j]];
                }
            }
        }
        h_out.slice_mut(s![.., di * h..(di + 1) * h]).assign(&hs);
        c_out.slice_mut(s![.., di * h..(di + 1) * h]).assign(&cs);
    }
    let mut out = vec![Value::F32(y.into_dyn()), Value::F32(h_out.into_dyn())];
    if kind == Kind::Lstm {
        out.push(Value::F32(c_out.into_dyn()));
    }
    Ok(out)
}

fn lstm(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    run(ctx, i, Kind::Lstm)
}

fn gru(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    run(ctx, i, Kind::Gru)
}

fn rnn(ctx: &OpCtx, i: Vec<Value>) -> Result<Vec<Value>> {
    run(ctx, i, Kind::Rnn)
}
