//! Convolutions. The layout pass has made them channels-first, which is ONNX's layout; kernels
//! are already `[out, in/group, *k]` (Conv) and `[in, out/group, *k]` (ConvTranspose), and
//! `pads` are ONNX's `[begins…, ends…]`; the IR's `auto_pad` same_upper / same_lower is ONNX's
//! SAME_UPPER / SAME_LOWER, or a Pad whose pads the graph computes from the input's shape where
//! onnxruntime gets SAME wrong. RuntimeConv is Conv on its inputs x, w (and b).
use super::{channels_first, Lower, A};
use crate::backends::onnx::builder::Ctx;
use crate::ir::ops::resolved_pads;
use crate::ir::ops::shape_rules::spatial_list;
use anyhow::Result;

pub fn find(op: &str) -> Option<Lower> {
    Some(match op {
        "Conv" => |c| conv(c, "Conv"),
        "ConvTranspose" => |c| conv(c, "ConvTranspose"),
        "RuntimeConv" => |c| conv(c, "RuntimeConv"),
        _ => return None,
    })
}

/// Adds list attributes that are set (an empty list means the ONNX default).
fn lists(c: &Ctx, names: &[&'static str], attrs: &mut Vec<A>) -> Result<()> {
    for &n in names {
        let v = c.a.ints(n)?;
        if !v.is_empty() {
            attrs.push(A::Is(n, v));
        }
    }
    Ok(())
}

/// The node's padding in ONNX: explicit pads `[begins…, ends…]` (its own, or its `auto_pad`
/// resolved over spatial sizes known here), ONNX's `auto_pad` SAME_UPPER / SAME_LOWER, or
/// (where onnxruntime gets SAME wrong) the name of ONNX Pad's pads computed when the model runs.
pub enum Padding {
    Explicit(Vec<i64>),
    Auto(A),
    RunTime(String),
}

/// The padding of a Conv (`pool` false) or Pool node. onnxruntime computes SAME padding wrongly
/// or not at all for dilated windows and for pools whose window is narrower than their stride:
/// those pads are computed in the graph.
pub fn padding(c: &mut Ctx, pool: bool) -> Result<Padding> {
    let mode = match c.a.str("auto_pad")?.as_str() {
        "same_upper" => "SAME_UPPER",
        "same_lower" => "SAME_LOWER",
        _ => return Ok(Padding::Explicit(c.a.ints("pads")?)),
    };
    let sizes = c.in_ty(0)?.shape[2..].to_vec();
    if sizes.iter().all(|&d| d >= 0) {
        return Ok(Padding::Explicit(resolved_pads(&c.a, &sizes)?));
    }
    let kernel = c.a.ints("kernel_shape")?;
    let n = kernel.len();
    let strides = spatial_list(c.a.ints("strides")?, n, 1, "strides")?;
    let dilations = spatial_list(c.a.ints("dilations")?, n, 1, "dilations")?;
    let narrow = pool && kernel.iter().zip(&strides).any(|(k, s)| k < s);
    if narrow || dilations.iter().any(|&d| d != 1) {
        let span: Vec<i64> = (0..n).map(|i| (kernel[i] - 1) * dilations[i] + 1).collect();
        return run_time_pads(c, &span, &strides, mode == "SAME_UPPER").map(Padding::RunTime);
    }
    Ok(Padding::Auto(A::S("auto_pad", mode.into())))
}

/// ONNX Pad's pads `[0, 0, begins…, 0, 0, ends…]` for SAME windows of `span` cells over the
/// spatial sizes of input 0, computed in the graph: ceil(size / stride) outputs, total
/// max((out - 1)·stride + span - size, 0), the odd cell at the end when `odd_at_end`.
fn run_time_pads(c: &mut Ctx, span: &[i64], strides: &[i64], odd_at_end: bool) -> Result<String> {
    let n = span.len() as i64;
    let x = c.x(0)?;
    let shape = c.op("Shape", &[&x], vec![]);
    let (starts, ends) = (c.ints("same_starts", &[2]), c.ints("same_ends", &[2 + n]));
    let sizes = c.op("Slice", &[&shape, &starts, &ends], vec![]);
    let less_1: Vec<i64> = strides.iter().map(|s| s - 1).collect();
    let less_1 = c.ints("same_strides_less_1", &less_1);
    let stride = c.ints("same_strides", strides);
    let rounded = c.op("Add", &[&sizes, &less_1], vec![]);
    let out = c.op("Div", &[&rounded, &stride], vec![]);
    let covered = c.op("Mul", &[&out, &stride], vec![]);
    // (out - 1)·stride + span - size = out·stride + (span - stride) - size.
    let extra: Vec<i64> = span.iter().zip(strides).map(|(k, s)| k - s).collect();
    let extra = c.ints("same_span_less_stride", &extra);
    let covered = c.op("Add", &[&covered, &extra], vec![]);
    let total = c.op("Sub", &[&covered, &sizes], vec![]);
    let zero = c.ints("same_zero", &[0]);
    let total = c.op("Max", &[&total, &zero], vec![]);
    let two = c.ints("same_two", &[2]);
    let small = c.op("Div", &[&total, &two], vec![]);
    let large = c.op("Sub", &[&total, &small], vec![]);
    let (begin, end) = if odd_at_end {
        (small, large)
    } else {
        (large, small)
    };
    let outer = c.ints("same_outer_pads", &[0, 0]);
    Ok(c.op(
        "Concat",
        &[&outer, &begin, &outer, &end],
        vec![A::I("axis", 0)],
    ))
}

/// Ones shaped `[1, 1, *spatial]` like input 0, made when the model runs.
pub fn run_time_ones(c: &mut Ctx) -> Result<String> {
    let x = c.x(0)?;
    let dtype = c.in_ty(0)?.dtype;
    let (zeros, ones) = (c.ints("ones_starts", &[0, 0]), c.ints("ones_ends", &[1, 1]));
    let axes = c.ints("ones_axes", &[0, 1]);
    let first = c.op("Slice", &[&x, &zeros, &ones, &axes], vec![]);
    let shape = c.op("Shape", &[&first], vec![]);
    let empty = c.op("ConstantOfShape", &[&shape], vec![]);
    let to = i64::from(super::onnx_dtype(dtype));
    let empty = c.op("Cast", &[&empty], vec![A::I("to", to)]);
    let one = c.scalar("one", dtype, 1.0)?;
    Ok(c.op("Add", &[&empty, &one], vec![]))
}

fn conv(c: &mut Ctx, op: &str) -> Result<()> {
    channels_first(c)?;
    let mut attrs = vec![
        A::Is("kernel_shape", c.a.ints("kernel_shape")?),
        A::I("group", c.a.int("group")?),
    ];
    lists(c, &["strides", "dilations"], &mut attrs)?;
    let mut x = c.x(0)?;
    if op == "ConvTranspose" {
        lists(c, &["pads", "output_padding"], &mut attrs)?;
    } else {
        match padding(c, false)? {
            Padding::Explicit(pads) if pads.is_empty() => {}
            Padding::Explicit(pads) => attrs.push(A::Is("pads", pads)),
            Padding::Auto(auto_pad) => attrs.push(auto_pad),
            Padding::RunTime(pads) => x = c.op("Pad", &[&x, &pads], vec![]),
        }
    }
    let mut inputs = vec![x];
    if op == "RuntimeConv" {
        for k in 1..c.node.inputs.len() {
            inputs.push(c.x(k)?);
        }
    } else {
        inputs.push(c.weight("weights")?);
        if c.a.bool("use_bias")? {
            inputs.push(c.weight("bias")?);
        }
    }
    let refs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let onnx_op = if op == "RuntimeConv" { "Conv" } else { op };
    c.last(onnx_op, &refs, attrs)
}

#[cfg(test)]
mod tests {
    use crate::backends::onnx::{build, Options};
    use crate::backends::pytorch::test_graph::{channels_first, OneOp};
    use crate::ir::dim;

    /// The op types of the ONNX nodes written for `op`'s graph.
    fn ops(op: OneOp) -> Vec<String> {
        let (graph, weights) = op.build();
        let prepared = channels_first(&graph, &weights).expect("converts the layout");
        let model = build(prepared, Options::default()).expect("writes the graph");
        model.nodes.iter().map(|n| n.op_type.clone()).collect()
    }

    /// Where onnxruntime gets SAME padding wrong (dilated windows, pools narrower than their
    /// stride), the pads are computed in the graph from the input's shape and applied by Pad
    /// (an average not counting them divides by the average of padded ones).
    #[test]
    fn same_padding_onnxruntime_gets_wrong_is_computed_in_the_graph() {
        let pads = [
            "Shape", "Slice", "Add", "Div", "Mul", "Add", "Sub", "Max", "Div", "Sub", "Concat",
        ];
        let dilated = OneOp::new("Conv")
            .input("x", &[1, 2, dim::symbol("H")])
            .ints("kernel_shape", &[3])
            .ints("strides", &[2])
            .ints("dilations", &[2])
            .str("auto_pad", "same_upper")
            .int("out_channels", 2)
            .weight("weights", &[2, 2, 3]);
        assert_eq!(ops(dilated), [&pads[..], &["Pad", "Conv"]].concat());
        let narrow = OneOp::new("Pool")
            .input("x", &[1, 2, dim::symbol("H")])
            .str("pooling_type", "AVG")
            .ints("kernel_shape", &[1])
            .ints("strides", &[2])
            .str("auto_pad", "same_lower");
        let ones = ["Slice", "Shape", "ConstantOfShape", "Cast", "Add"];
        let pooled = [
            "Pad",
            "Pad",
            "AveragePool",
            "AveragePool",
            "Div",
            "Identity",
        ];
        assert_eq!(ops(narrow), [&pads[..], &ones, &pooled].concat());
    }
}
