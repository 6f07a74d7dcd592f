//! Shared by the layout tests: a deterministic PRNG, attribute helpers, and running a graph and
//! its conversion on the same inputs to compare their outputs.
use mmdnn::interp::{Interpreter, Value};
use mmdnn::ir::passes::layout::LayoutResult;
use mmdnn::ir::{AttrValue, Graph};
use mmdnn::weights::WeightReader;
use ndarray::{ArrayD, IxDyn};

// ---------------------------------------------------------------------------------------------
// A tiny deterministic PRNG (SplitMix64).

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

// ---------------------------------------------------------------------------------------------
// Attribute helpers.

pub fn ints(v: &[i64]) -> AttrValue {
    AttrValue::Ints(v.to_vec())
}

pub fn usizes(v: &[i64]) -> Vec<usize> {
    v.iter().map(|&d| d as usize).collect()
}

// ---------------------------------------------------------------------------------------------
// Running and comparing.

pub fn transpose(a: &ArrayD<f32>, perm: &[usize]) -> ArrayD<f32> {
    a.view()
        .permuted_axes(IxDyn(perm))
        .as_standard_layout()
        .into_owned()
}

pub fn random_inputs(g: &Graph, batch: usize, seed: u64) -> Vec<(String, ArrayD<f32>)> {
    let mut rng = Rng(seed ^ 0xABCD);
    g.inputs
        .iter()
        .map(|name| {
            let node = g.node(name).unwrap();
            let Some(AttrValue::Shape(shape)) = node.attrs.get("shape") else {
                panic!("input without shape");
            };
            let dims: Vec<usize> = shape
                .iter()
                .map(|&d| if d < 0 { batch } else { d as usize })
                .collect();
            let n = dims.iter().product();
            let v = (0..n).map(|_| rng.uniform()).collect();
            (
                name.clone(),
                ArrayD::from_shape_vec(IxDyn(&dims), v).unwrap(),
            )
        })
        .collect()
}

fn run(g: &Graph, w: &dyn WeightReader, feeds: &[(String, ArrayD<f32>)]) -> Vec<ArrayD<f32>> {
    let feeds: Vec<(String, Value)> = feeds
        .iter()
        .map(|(n, a)| (n.clone(), Value::F32(a.clone())))
        .collect();
    Interpreter::new(g, w)
        .run(&feeds)
        .unwrap_or_else(|e| panic!("interpreter failed: {e:#}"))
        .iter()
        .map(|v| v.to_f32())
        .collect()
}

/// Max of |a - b| / max(1, |a|).
fn max_error(reference: &ArrayD<f32>, got: &ArrayD<f32>) -> f32 {
    assert_eq!(reference.shape(), got.shape(), "output shapes differ");
    reference
        .iter()
        .zip(got)
        .map(|(&a, &b)| {
            if a.is_nan() && b.is_nan() {
                0.0
            } else {
                (a - b).abs() / a.abs().max(1.0)
            }
        })
        .fold(0.0, f32::max)
}

/// Runs `g` and its conversion on the same inputs (transposed as reported) and returns the
/// largest relative error over all outputs (transposed back as reported).
pub fn compare(
    g: &Graph,
    w: &dyn WeightReader,
    res: &LayoutResult,
    feeds: &[(String, ArrayD<f32>)],
) -> f32 {
    let expected = run(g, w, feeds);
    let new_feeds: Vec<(String, ArrayD<f32>)> = feeds
        .iter()
        .zip(&res.input_perms)
        .map(|((n, a), p)| (n.clone(), p.as_ref().map_or(a.clone(), |p| transpose(a, p))))
        .collect();
    let got = run(&res.graph, &res.weights, &new_feeds);
    assert_eq!(expected.len(), got.len());
    expected
        .iter()
        .zip(&got)
        .zip(&res.output_perms)
        .map(|((e, o), p)| {
            let e = p.as_ref().map_or(e.clone(), |p| transpose(e, p));
            max_error(&e, o)
        })
        .fold(0.0, f32::max)
}

pub fn transposes(g: &Graph) -> usize {
    g.nodes.iter().filter(|n| n.op == "Transpose").count()
}

pub fn describe(g: &Graph) -> String {
    g.nodes
        .iter()
        .map(|n| {
            let ins: Vec<String> = n.inputs.iter().map(|r| r.to_string()).collect();
            let attrs: Vec<String> = n.attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "  {} = {}({}) {}  -> {}",
                n.name,
                n.op,
                ins.join(", "),
                attrs.join(" "),
                n.outputs
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}
