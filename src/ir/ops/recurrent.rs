//! Recurrent layers. Inputs are batch-first [N, T, F]. Weights follow one layout for all three
//! ops (D = 1, or 2 when bidirectional; G = gates: LSTM 4 in order i, o, f, c; GRU 3 in order
//! z, r, h; RNN 1): W [D, G·H, F], R [D, G·H, H], B [D, 2·G·H] (input biases then recurrent
//! biases). Outputs: y [N, T, D·H] (directions concatenated on the last axis, the reverse
//! direction's outputs in forward time order), h [N, D·H] (final state per direction) and, for
//! LSTM, c [N, D·H]. The initial states are optional inputs laid out as the final ones: h0
//! [N, D·H] and, for LSTM, c0 [N, D·H] (absent: zeros), so a final state can be fed back in.
use super::*;
use crate::ir::types::AttrKind as K;

const HIDDEN: AttrDef = attr(
    "hidden_size",
    K::Int,
    Default::Required,
    "H, units per direction",
);
const DIRECTION: AttrDef = choice(
    "direction",
    "forward",
    &["forward", "reverse", "bidirectional"],
    "reverse runs from the last step to the first",
);
const W: WeightDef = weight("W", "[D, G·H, F]");
const R: WeightDef = weight("R", "[D, G·H, H]");
const B: WeightDef = optional_weight(
    "B",
    "[D, 2·G·H]: input then recurrent biases; absent: zeros",
);

pub const OPS: &[OpDef] = &[
    OpDef {
        name: "LSTM",
        family: Family::Recurrent,
        doc:
            "Long short-term memory; gates i, o, f, c; cell clip none; optional peepholes; initial \
              states h0, c0 [N, D·H] (absent: zeros).",
        inputs: Inputs::Fixed {
            names: &["x", "h0", "c0"],
            required: 1,
        },
        outputs: Outputs::Fixed(&["y", "h", "c"]),
        attrs: &[
            HIDDEN,
            DIRECTION,
            choice(
                "activation",
                "tanh",
                &["tanh", "relu", "sigmoid", "linear"],
                "cell and output activation",
            ),
            choice(
                "recurrent_activation",
                "sigmoid",
                &["sigmoid", "hard_sigmoid"],
                "gate activation",
            ),
        ],
        weights: &[
            W,
            R,
            B,
            optional_weight(
                "P",
                "[D, 3·H]: peephole weights of gates i, o, f (times the previous cell state for \
                 i and f, the new one for o); absent: zeros",
            ),
        ],
        layout: Layout::Fixed,
        infer: infer_recurrent,
    },
    OpDef {
        name: "GRU",
        family: Family::Recurrent,
        doc: "Gated recurrent unit; gates z, r, h; initial state h0 [N, D·H] (absent: zeros).",
        inputs: Inputs::Fixed {
            names: &["x", "h0"],
            required: 1,
        },
        outputs: Outputs::Fixed(&["y", "h"]),
        attrs: &[
            HIDDEN,
            DIRECTION,
            choice(
                "activation",
                "tanh",
                &["tanh", "relu", "sigmoid", "linear"],
                "candidate activation",
            ),
            choice(
                "recurrent_activation",
                "sigmoid",
                &["sigmoid", "hard_sigmoid"],
                "gate activation",
            ),
            attr(
                "linear_before_reset",
                K::Bool,
                Default::Bool(false),
                "apply the reset gate after the recurrent matmul (Keras reset_after, PyTorch)",
            ),
        ],
        weights: &[W, R, B],
        layout: Layout::Fixed,
        infer: infer_recurrent,
    },
    OpDef {
        name: "RNN",
        family: Family::Recurrent,
        doc:
            "Simple recurrent layer: h = act(x·Wᵀ + h·Rᵀ + b); initial state h0 [N, D·H] (absent: \
              zeros).",
        inputs: Inputs::Fixed {
            names: &["x", "h0"],
            required: 1,
        },
        outputs: Outputs::Fixed(&["y", "h"]),
        attrs: &[
            HIDDEN,
            DIRECTION,
            choice(
                "activation",
                "tanh",
                &["tanh", "relu", "sigmoid", "linear"],
                "activation",
            ),
        ],
        weights: &[W, R, B],
        layout: Layout::Fixed,
        infer: infer_recurrent,
    },
];

fn infer_recurrent(ctx: &InferCtx) -> Result<Vec<TensorType>> {
    let x = ctx.input(0)?;
    if x.rank() != 3 {
        bail!("expects a [N, T, F] input, got {x}");
    }
    let d = if ctx.attrs.str("direction")? == "bidirectional" {
        2
    } else {
        1
    };
    let h = shape_rules::dim_mul(ctx.attrs.int("hidden_size")?, d)?;
    let (mut n, t) = (x.shape[0], x.shape[1]);
    for (i, name) in ["h0", "c0"].iter().enumerate() {
        if let Some(s) = ctx.inputs.get(i + 1) {
            check_state(x, s, name, n, h)?;
            if n < 0 && s.shape[0] >= 0 {
                n = s.shape[0]; // the batch, known from the state
            }
        }
    }
    let mut out = vec![
        TensorType::new(x.dtype, vec![n, t, h]),
        TensorType::new(x.dtype, vec![n, h]),
    ];
    if ctx.attrs.def.name == "LSTM" {
        out.push(TensorType::new(x.dtype, vec![n, h]));
    }
    Ok(out)
}

/// An initial state must have x's dtype and shape [N, D·H]; a dim not known now matches any.
fn check_state(x: &TensorType, s: &TensorType, name: &str, n: i64, h: i64) -> Result<()> {
    let fits = |got: i64, want: i64| got < 0 || want < 0 || got == want;
    if s.dtype != x.dtype || s.rank() != 2 || !fits(s.shape[0], n) || !fits(s.shape[1], h) {
        bail!(
            "initial state {name} is {s}; expected {}[{n}, {h}] ([N, D·H])",
            x.dtype
        );
    }
    Ok(())
}
