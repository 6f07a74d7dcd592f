//! Convolutions: `Conv`, `DepthwiseConv` and `SeparableConv` (both Conv with `group` = input
//! channels) and `ConvTranspose`, all channels_last with MMdnn's Keras-style kernels.
use super::import::{dims, Importer, MapFn};
use super::node::MmNode;
use super::weights::Stored;
use super::window::Window;
use crate::ir::{AttrValue, Node, TensorRef};
use anyhow::{bail, Context, Result};

pub(super) fn lookup(op: &str) -> Option<MapFn> {
    Some(match op {
        "Conv" => conv,
        "DepthwiseConv" => depthwise_conv,
        "SeparableConv" => separable_conv,
        "ConvTranspose" => conv_transpose,
        _ => return None,
    })
}

/// A Conv node in channels_last layout.
fn conv_node(name: &str, input: TensorRef, w: &Window, group: i64, out: i64, bias: bool) -> Node {
    w.attrs(Node::new(name, "Conv").with_inputs([input]))
        .with_attr("group", AttrValue::Int(group))
        .with_attr("out_channels", AttrValue::Int(out))
        .with_attr("use_bias", AttrValue::Bool(bias))
        .with_attr("data_format", AttrValue::Str("channels_last".into()))
}

/// Splits MMdnn's conv `kernel_shape` `[*kernel, a, b]` into the spatial kernel, a and b.
fn split_kernel(n: &MmNode) -> Result<(Vec<i64>, i64, i64)> {
    let ks = n.req_ints("kernel_shape")?;
    if !(3..=5).contains(&ks.len()) {
        bail!("kernel_shape {ks:?} is not [*kernel, in, out] for 1 to 3 spatial axes");
    }
    let k = ks.len() - 2;
    Ok((ks[..k].to_vec(), ks[k], ks[k + 1]))
}

/// Conv: kernel `[*k, in, out]`, weights `[*k, in/group, out]` = our channels_last layout.
fn conv(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let (kernel, _, out) = split_kernel(n)?;
    let w = Window::read(cx, n, kernel)?;
    let (x, group, bias) = (
        n.input(0)?.clone(),
        n.int("group")?.unwrap_or(1),
        n.flag("use_bias")?,
    );
    cx.add(conv_node(n.name(), x, &w, group, out, bias));
    cx.same_weight(n, "weights", &["weights"]);
    cx.same_weight(n, "bias", &["bias"]);
    Ok(())
}

/// DepthwiseConv: kernel `[*k, in, mult]` becomes a Conv with `group` = in; its weights keep
/// their bytes as `[*k, 1, in·mult]`.
fn depthwise_conv(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let (kernel, c, mult) = split_kernel(n)?;
    let w = Window::read(cx, n, kernel.clone())?;
    let (x, bias) = (n.input(0)?.clone(), n.flag("use_bias")?);
    cx.add(conv_node(n.name(), x, &w, c, c * mult, bias));
    let from = dims(&[kernel.as_slice(), &[c, mult]].concat());
    let to = dims(&[kernel.as_slice(), &[1, c * mult]].concat());
    let stored = Stored::new(n.name(), &["weights"]).reshaped(from, to);
    cx.weight(n.name(), "weights", stored);
    cx.same_weight(n, "bias", &["bias"]);
    Ok(())
}

/// SeparableConv: `<name>_depthwise` (Conv, group = in) then `<name>` (1×1 Conv with the
/// bias). MMdnn records no depth multiplier (its emitters assume 1); a `depthwise_filter`
/// with another multiplier fails when read.
fn separable_conv(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let (kernel, c, out) = split_kernel(n)?;
    let w = Window::read(cx, n, kernel.clone())?;
    let dw_name = format!("{}_depthwise", n.name());
    let dw = cx.add_new(conv_node(&dw_name, n.input(0)?.clone(), &w, c, c, false));
    let from = dims(&[kernel.as_slice(), &[c, 1]].concat());
    let to = dims(&[kernel.as_slice(), &[1, c]].concat());
    let stored = Stored::new(n.name(), &["depthwise_filter"]).reshaped(from, to);
    cx.weight(&dw.node, "weights", stored);
    let pointwise = Window {
        kernel: vec![1; kernel.len()],
        strides: vec![1; kernel.len()],
        dilations: vec![1; kernel.len()],
        pads: vec![0; 2 * kernel.len()],
    };
    let bias = n.flag("use_bias")?;
    cx.add(conv_node(n.name(), dw, &pointwise, 1, out, bias));
    cx.same_weight(n, "weights", &["pointwise_filter"]);
    cx.same_weight(n, "bias", &["bias"]);
    Ok(())
}

/// ConvTranspose: weights `[*k, out, in]` = our channels_last layout. MMdnn's parsers disagree
/// on the order in `kernel_shape` and on what `pads` mean, so the output channels come from the
/// recorded output shape and the cropping from the recorded input and output sizes.
fn conv_transpose(cx: &mut Importer, n: &MmNode) -> Result<()> {
    let (kernel, _, _) = split_kernel(n)?;
    let k = kernel.len();
    let out_shape = cx
        .output_shape(n)
        .filter(|s| s.len() == k + 2 && s[k + 1] >= 0)
        .context("`_output_shapes` does not give the output channels")?;
    let out = out_shape[k + 1];
    let mut w = Window::as_written(n, kernel)?;
    let mut extra = vec![0; k];
    let input = cx.spatial_dims(n.input(0)?, k);
    let output = cx.spatial_dims(&TensorRef::new(n.name(), 0), k);
    let same = n.same_padding()?;
    if let (Some(input), Some(output)) = (input, output) {
        for i in 0..k {
            let full = (input[i] - 1) * w.strides[i] + w.dilations[i] * (w.kernel[i] - 1) + 1;
            let crop = full - output[i];
            let begin = if same { crop.max(0) / 2 } else { w.pads[i] };
            let end = crop - begin;
            w.pads[i] = begin;
            w.pads[k + i] = end.max(0);
            extra[i] = (-end).max(0);
        }
    }
    let group = n.int("group")?.unwrap_or(1);
    cx.add(
        w.attrs(n.node("ConvTranspose"))
            .with_attr("output_padding", AttrValue::Ints(extra))
            .with_attr("group", AttrValue::Int(group))
            .with_attr("out_channels", AttrValue::Int(out))
            .with_attr("use_bias", AttrValue::Bool(n.flag("use_bias")?))
            .with_attr("data_format", AttrValue::Str("channels_last".into())),
    );
    cx.same_weight(n, "weights", &["weights"]);
    cx.same_weight(n, "bias", &["bias"]);
    Ok(())
}
