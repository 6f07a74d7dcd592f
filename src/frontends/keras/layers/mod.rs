//! One function per Keras layer class, grouped by the IR op family it maps to (files named as
//! the catalogue's families; `attention.rs` for MultiHeadAttention, `op_calls.rs` for recorded
//! TF functions and Keras 3 operations of any family), found by class name in [`TABLE`].
//! Each gets the call ([`LayerCall`]: node name, config, resolved inputs and arguments, the
//! layer's weight variables) and returns the call's outputs. Data stays in Keras's layout
//! (channels_last unless the layer says otherwise), with `data_format` on every
//! layout-sensitive op.
mod activation;
mod attention;
mod conv;
mod dense;
mod elementwise;
mod norm;
mod op_calls;
mod pool;
mod recurrent;
mod resize;
mod shape;

use super::config::{Layer, Model};
use super::convert::Cx;
use super::h5::Var;
use crate::ir::{AttrValue, TensorRef};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// A resolved call argument.
#[derive(Clone, Debug)]
pub enum RArg {
    Tensor(TensorRef),
    List(Vec<RArg>),
    Value(Json),
}

impl RArg {
    pub fn tensors(&self) -> Vec<&TensorRef> {
        match self {
            RArg::Tensor(t) => vec![t],
            RArg::List(items) => items.iter().flat_map(|a| a.tensors()).collect(),
            RArg::Value(_) => vec![],
        }
    }
    pub fn tensor(&self) -> Option<&TensorRef> {
        match self {
            RArg::Tensor(t) => Some(t),
            _ => None,
        }
    }
    pub fn value(&self) -> Option<&Json> {
        match self {
            RArg::Value(v) => Some(v),
            _ => None,
        }
    }
}

/// Read access to a layer's config with errors that name the key.
#[derive(Clone, Copy)]
pub struct Cfg<'a>(pub &'a Json);

impl<'a> Cfg<'a> {
    /// The value, `None` when absent or null.
    pub fn get(&self, key: &str) -> Option<&'a Json> {
        self.0.get(key).filter(|v| !v.is_null())
    }
    pub fn int(&self, key: &str) -> Result<i64> {
        self.get(key)
            .and_then(Json::as_i64)
            .ok_or_else(|| anyhow!("config '{key}' is missing or not an integer"))
    }
    pub fn int_or(&self, key: &str, default: i64) -> Result<i64> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_i64()
                .ok_or_else(|| anyhow!("config '{key}' is {v}, not an integer")),
        }
    }
    pub fn f32_or(&self, key: &str, default: f32) -> Result<f32> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_f64()
                .map(|f| f as f32)
                .ok_or_else(|| anyhow!("config '{key}' is {v}, not a number")),
        }
    }
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        self.get(key)
            .map(|v| {
                v.as_f64()
                    .map(|f| f as f32)
                    .ok_or_else(|| anyhow!("config '{key}' is {v}, not a number"))
            })
            .transpose()
    }
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| anyhow!("config '{key}' is {v}, not a bool")),
        }
    }
    pub fn str_or(&self, key: &str, default: &str) -> Result<String> {
        match self.get(key) {
            None => Ok(default.to_string()),
            Some(v) => v
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("config '{key}' is {v}, not a string")),
        }
    }
    /// An int or a list of `n` ints (`kernel_size: 3` or `[3, 3]`).
    pub fn ints(&self, key: &str, n: usize) -> Result<Vec<i64>> {
        let v = self
            .get(key)
            .ok_or_else(|| anyhow!("config '{key}' is missing"))?;
        ints_of(v, n).with_context(|| format!("config '{key}'"))
    }
    pub fn ints_or(&self, key: &str, n: usize, default: i64) -> Result<Vec<i64>> {
        match self.get(key) {
            None => Ok(vec![default; n]),
            Some(_) => self.ints(key, n),
        }
    }
    /// `channels_last` unless the layer says `channels_first`.
    pub fn channels_last(&self) -> Result<bool> {
        Ok(self.str_or("data_format", "channels_last")? != "channels_first")
    }
}

/// The `data_format` attribute value for a layout.
pub fn data_format(channels_last: bool) -> AttrValue {
    AttrValue::Str(
        if channels_last {
            "channels_last"
        } else {
            "channels_first"
        }
        .into(),
    )
}

/// An int (repeated `n` times) or a list of ints of length `n` (any length when `n` is 0).
pub fn ints_of(v: &Json, n: usize) -> Result<Vec<i64>> {
    if let Some(i) = v.as_i64() {
        return Ok(vec![i; n.max(1)]);
    }
    let list: Vec<i64> = v
        .as_array()
        .ok_or_else(|| anyhow!("{v} is not an int or a list of ints"))?
        .iter()
        .map(|x| {
            x.as_i64()
                .ok_or_else(|| anyhow!("{v} is not a list of ints"))
        })
        .collect::<Result<_>>()?;
    if n != 0 && list.len() != n {
        bail!("{v} should have {n} values");
    }
    Ok(list)
}

/// One call of a layer, ready to convert.
pub struct LayerCall<'a> {
    /// Name of the node that holds the layer's weights (made unique by the graph).
    pub name: String,
    pub class: &'a str,
    pub module: Option<&'a str>,
    pub cfg: Cfg<'a>,
    /// Every tensor among the positional arguments, in order.
    pub inputs: Vec<TensorRef>,
    pub args: Vec<RArg>,
    pub kwargs: BTreeMap<String, RArg>,
    /// The layer's weight variables in storage order.
    pub vars: Vec<Var>,
}

impl LayerCall<'_> {
    /// The single input.
    pub fn input(&self) -> Result<TensorRef> {
        match &self.inputs[..] {
            [x] => Ok(x.clone()),
            other => bail!("expects one input, got {}", other.len()),
        }
    }
    /// The `i`-th weight variable.
    pub fn var(&self, i: usize) -> Result<&Var> {
        self.vars.get(i).ok_or_else(|| {
            anyhow!(
                "expects at least {} weight(s) but the weights file has {}{}",
                i + 1,
                self.vars.len(),
                if self.vars.is_empty() {
                    " (is a weights file missing?)"
                } else {
                    ""
                }
            )
        })
    }
    /// A sub-name for helper nodes: `<layer>/<what>`.
    pub fn sub(&self, what: &str) -> String {
        format!("{}/{what}", self.name)
    }
    /// A keyword argument, or the positional argument at `pos`.
    pub fn arg(&self, key: &str, pos: usize) -> Option<&RArg> {
        self.kwargs
            .get(key)
            .or_else(|| self.args.get(pos))
            .filter(|a| !matches!(a, RArg::Value(Json::Null)))
    }
}

/// A layer's conversion function.
pub type LayerFn = fn(&mut Cx, &LayerCall) -> Result<Vec<TensorRef>>;

/// Layer classes and their functions (Keras 2 aliases included).
const TABLE: &[(&str, LayerFn)] = &[
    ("Conv1D", conv::conv),
    ("Conv2D", conv::conv),
    ("Conv3D", conv::conv),
    ("Convolution1D", conv::conv),
    ("Convolution2D", conv::conv),
    ("Convolution3D", conv::conv),
    ("Conv1DTranspose", conv::conv_transpose),
    ("Conv2DTranspose", conv::conv_transpose),
    ("Conv3DTranspose", conv::conv_transpose),
    ("Convolution2DTranspose", conv::conv_transpose),
    ("Convolution3DTranspose", conv::conv_transpose),
    ("DepthwiseConv1D", conv::depthwise),
    ("DepthwiseConv2D", conv::depthwise),
    ("SeparableConv1D", conv::separable),
    ("SeparableConv2D", conv::separable),
    ("SeparableConvolution1D", conv::separable),
    ("SeparableConvolution2D", conv::separable),
    ("MaxPooling1D", pool::pool),
    ("MaxPooling2D", pool::pool),
    ("MaxPooling3D", pool::pool),
    ("MaxPool1D", pool::pool),
    ("MaxPool2D", pool::pool),
    ("MaxPool3D", pool::pool),
    ("AveragePooling1D", pool::pool),
    ("AveragePooling2D", pool::pool),
    ("AveragePooling3D", pool::pool),
    ("AvgPool1D", pool::pool),
    ("AvgPool2D", pool::pool),
    ("AvgPool3D", pool::pool),
    ("GlobalMaxPooling1D", pool::global_pool),
    ("GlobalMaxPooling2D", pool::global_pool),
    ("GlobalMaxPooling3D", pool::global_pool),
    ("GlobalMaxPool1D", pool::global_pool),
    ("GlobalMaxPool2D", pool::global_pool),
    ("GlobalMaxPool3D", pool::global_pool),
    ("GlobalAveragePooling1D", pool::global_pool),
    ("GlobalAveragePooling2D", pool::global_pool),
    ("GlobalAveragePooling3D", pool::global_pool),
    ("GlobalAvgPool1D", pool::global_pool),
    ("GlobalAvgPool2D", pool::global_pool),
    ("GlobalAvgPool3D", pool::global_pool),
    ("Dense", dense::dense),
    ("Embedding", dense::embedding),
    ("Activation", activation::activation_layer),
    ("ReLU", activation::relu),
    ("LeakyReLU", activation::leaky_relu),
    ("PReLU", activation::prelu),
    ("ELU", activation::elu),
    ("ThresholdedReLU", activation::thresholded_relu),
    ("Softmax", activation::softmax),
    ("Dropout", activation::identity),
    ("SpatialDropout1D", activation::identity),
    ("SpatialDropout2D", activation::identity),
    ("SpatialDropout3D", activation::identity),
    ("GaussianNoise", activation::identity),
    ("GaussianDropout", activation::identity),
    ("AlphaDropout", activation::identity),
    ("ActivityRegularization", activation::identity),
    ("Identity", activation::identity),
    ("StochasticDepth", activation::identity),
    ("BatchNormalization", norm::batch_norm),
    ("LayerNormalization", norm::layer_norm),
    ("GroupNormalization", norm::group_norm),
    ("Normalization", norm::normalization),
    ("Rescaling", norm::rescaling),
    ("UnitNormalization", norm::unit_norm),
    ("Reshape", shape::reshape),
    ("Flatten", shape::flatten),
    ("Permute", shape::permute),
    ("RepeatVector", shape::repeat_vector),
    ("ZeroPadding1D", shape::zero_padding),
    ("ZeroPadding2D", shape::zero_padding),
    ("ZeroPadding3D", shape::zero_padding),
    ("Cropping1D", shape::cropping),
    ("Cropping2D", shape::cropping),
    ("Cropping3D", shape::cropping),
    ("UpSampling1D", resize::upsampling),
    ("UpSampling2D", resize::upsampling),
    ("UpSampling3D", resize::upsampling),
    ("Resizing", resize::resizing),
    ("Concatenate", elementwise::concatenate),
    ("Add", elementwise::add),
    ("Subtract", elementwise::subtract),
    ("Multiply", elementwise::multiply),
    ("Average", elementwise::average),
    ("Maximum", elementwise::maximum),
    ("Minimum", elementwise::minimum),
    ("Dot", elementwise::dot),
    ("SimpleRNN", recurrent::simple_rnn),
    ("LSTM", recurrent::lstm),
    ("GRU", recurrent::gru),
    ("Bidirectional", recurrent::bidirectional),
    ("TimeDistributed", recurrent::time_distributed),
    ("MultiHeadAttention", attention::multi_head_attention),
    ("TFOpLambda", op_calls::tf_op_lambda),
    ("SlicingOpLambda", op_calls::tf_op_lambda),
    ("CustomScaleLayer", elementwise::custom_scale),
    ("LayerScale", elementwise::layer_scale),
];

/// Whether a config entry is a Keras 3 operation (`x + 1` on a tensor) rather than a layer:
/// its module says so, or (in Keras 3 `.h5` files, which drop the module) its config lacks the
/// `trainable` flag every layer has.
pub fn is_op(class: &str, module: Option<&str>, config: &Json) -> bool {
    match module {
        Some(m) => m.starts_with("keras.src.ops") || m.starts_with("keras.ops"),
        None => {
            config.get("trainable").is_none()
                && op_calls::KERAS_OPS.iter().any(|(c, _)| *c == class)
        }
    }
}

/// The function for a layer class or Keras 3 operation.
fn find(class: &str, module: Option<&str>, config: &Json) -> Option<LayerFn> {
    if is_op(class, module, config) {
        return op_calls::KERAS_OPS
            .iter()
            .any(|(c, _)| *c == class)
            .then_some(op_calls::keras_op as LayerFn);
    }
    TABLE.iter().find(|(c, _)| *c == class).map(|(_, f)| *f)
}

/// Converts one call.
pub fn convert(cx: &mut Cx, call: &LayerCall) -> Result<Vec<TensorRef>> {
    let f = find(call.class, call.module, call.cfg.0)
        .ok_or_else(|| anyhow!("internal: no converter for class {}", call.class))?;
    f(cx, call)
}

/// Every layer (nested models and wrapped layers included) that cannot be converted, as
/// "name (Class)" with the reason where useful.
pub fn unsupported(model: &Model) -> Vec<String> {
    let mut out = vec![];
    for l in &model.layers {
        if let Some(m) = &l.model {
            out.extend(unsupported(m));
        } else if !l.is_input() {
            if let Some(why) = why_unsupported(l) {
                out.push(format!("'{}' ({}{why})", l.name, l.class));
            }
        }
    }
    out
}

/// `None` when the layer can be converted, else a short reason ("" for an unknown class).
fn why_unsupported(l: &Layer) -> Option<String> {
    match l.class.as_str() {
        "Lambda" => return Some(": Python code".into()),
        "TFOpLambda" | "SlicingOpLambda" => {
            let f = l
                .config
                .get("function")
                .and_then(Json::as_str)
                .unwrap_or("?");
            return (!op_calls::tf_function_known(f)).then(|| format!(": tf.{f}"));
        }
        "Bidirectional" | "TimeDistributed" => {
            let inner = l
                .config
                .pointer("/layer/class_name")
                .and_then(Json::as_str)?;
            let ok = if l.class == "Bidirectional" {
                matches!(inner, "LSTM" | "GRU" | "SimpleRNN")
            } else {
                let cfg = l.config.pointer("/layer/config").unwrap_or(&Json::Null);
                find(inner, None, cfg).is_some()
                    && !matches!(inner, "Bidirectional" | "TimeDistributed")
            };
            return (!ok).then(|| format!(" of {inner}"));
        }
        _ => {}
    }
    if let Ok(act) = activation::name_of(l.config.get("activation")) {
        if !activation::known(&act) {
            return Some(format!(": activation {act}"));
        }
    }
    find(&l.class, l.module.as_deref(), &l.config)
        .is_none()
        .then(String::new)
}
