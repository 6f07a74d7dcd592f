//! Activations and elementwise unary math: one input, one output of the same shape.
use super::shape_rules::same_as_input;
use super::*;
use crate::ir::types::AttrKind as K;

/// An elementwise unary op with the given attributes.
const fn unary(name: &'static str, doc: &'static str, attrs: &'static [AttrDef]) -> OpDef {
    OpDef {
        name,
        family: Family::Activation,
        doc,
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs,
        weights: &[],
        layout: Layout::Agnostic,
        infer: same_as_input,
    }
}

const SOFTMAX_AXIS: AttrDef = attr("axis", K::Int, Default::Int(-1), "the axis normalised over");

/// A unary op over one axis (softmax family).
const fn along_axis(name: &'static str, doc: &'static str) -> OpDef {
    OpDef {
        name,
        family: Family::Activation,
        doc,
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs: &[SOFTMAX_AXIS],
        weights: &[],
        layout: Layout::Axis(AxisRule::Kept),
        infer: same_as_input,
    }
}

pub const OPS: &[OpDef] = &[
    unary("Relu", "max(x, 0)", &[]),
    unary(
        "LeakyRelu",
        "x if x ≥ 0 else alpha·x",
        &[attr("alpha", K::Float, Default::Float(0.01), "slope for x < 0")],
    ),
    OpDef {
        name: "PRelu",
        family: Family::Activation,
        doc: "x if x ≥ 0 else slope·x, slope a learned tensor broadcast against x.",
        inputs: ONE_INPUT,
        outputs: ONE_OUTPUT,
        attrs: &[],
        weights: &[weight(
            "slope",
            "broadcastable to the input with NumPy rules (e.g. [C, 1, 1] channels_first, [C] channels_last)",
        )],
        layout: Layout::PRelu,
        infer: same_as_input,
    },
    unary(
        "Elu",
        "x if x > 0 else alpha·(exp(x) − 1)",
        &[attr("alpha", K::Float, Default::Float(1.0), "scale for x ≤ 0")],
    ),
    unary(
        "Selu",
        "gamma·(x if x > 0 else alpha·(exp(x) − 1))",
        &[
            attr("alpha", K::Float, Default::Float(1.673_263_2), "alpha"),
            attr("gamma", K::Float, Default::Float(1.050_701), "gamma"),
        ],
    ),
    unary(
        "ThresholdedRelu",
        "x if x > alpha else 0",
        &[attr("alpha", K::Float, Default::Float(1.0), "threshold")],
    ),
    unary("Sigmoid", "1 / (1 + exp(−x))", &[]),
    unary(
        "HardSigmoid",
        "max(0, min(1, alpha·x + beta))",
        &[
            attr("alpha", K::Float, Default::Float(0.2), "slope"),
            attr("beta", K::Float, Default::Float(0.5), "offset"),
        ],
    ),
    unary("HardSwish", "x · max(0, min(1, x/6 + 1/2))", &[]),
    unary("SiLU", "x · sigmoid(x) (swish)", &[]),
    unary(
        "Gelu",
        "x · Φ(x); approximate = tanh uses the tanh formula",
        &[choice("approximate", "none", &["none", "tanh"], "exact erf or tanh approximation")],
    ),
    unary("Mish", "x · tanh(softplus(x))", &[]),
    unary("Tanh", "tanh(x)", &[]),
    unary("Softplus", "log(1 + exp(x))", &[]),
    unary("Softsign", "x / (1 + |x|)", &[]),
    unary(
        "Clip",
        "min(max(x, min), max); Relu6 is Clip(0, 6)",
        &[
            attr("min", K::Float, Default::Optional, "lower bound (absent: none)"),
            attr("max", K::Float, Default::Optional, "upper bound (absent: none)"),
        ],
    ),
    along_axis("Softmax", "exp(x) / sum(exp(x)) along axis"),
    along_axis("LogSoftmax", "log(softmax(x)) along axis"),
    unary("Exp", "exp(x)", &[]),
    unary("Log", "natural logarithm", &[]),
    unary("Sqrt", "square root", &[]),
    unary("Rsqrt", "1 / sqrt(x)", &[]),
    unary("Reciprocal", "1 / x", &[]),
    unary("Square", "x · x", &[]),
    unary("Abs", "|x|", &[]),
    unary("Neg", "−x", &[]),
    unary("Sign", "−1, 0 or 1", &[]),
    unary("Floor", "round down", &[]),
    unary("Ceil", "round up", &[]),
    unary("Round", "round half to even", &[]),
    unary("Erf", "error function", &[]),
    unary("Sin", "sine", &[]),
    unary("Cos", "cosine", &[]),
    unary("Not", "logical not of a bool tensor", &[]),
    unary("Identity", "x (also inference-time Dropout, noise and similar layers)", &[]),
];
