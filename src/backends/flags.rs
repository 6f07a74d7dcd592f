//! The target-side flags of `convert`, `tocode` and `tomodel` in MMdnn's spellings, each
//! tagged with the target it belongs to; [`TargetFlags::options`] checks them against the
//! target's backend (its [`super::Backend::flags`]) and hands them over as [`TargetOptions`].
use super::{check_flags, TargetOptions};
use clap::builder::PossibleValuesParser;
use std::path::PathBuf;

/// The target-side flags shared by `tocode`, `tomodel` and `convert`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TargetFlags {
    /// Phase of the generated code (MMdnn's --phase): test (inference) or train
    #[arg(long, default_value = "test", value_parser = PossibleValuesParser::new(["test", "train"]))]
    pub phase: String,
    /// [TensorFlow] SavedModel tag
    #[arg(long = "dump_tag", value_parser = PossibleValuesParser::new(["SERVING", "TRAINING"]))]
    pub dump_tag: Option<String>,
    #[command(flatten)]
    pub coreml: CoremlFlags,
    #[command(flatten)]
    pub onnx: OnnxFlags,
}

/// MMdnn's Core ML options (meaningful only with -df coreml).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct CoremlFlags {
    /// [Core ML] names of the model inputs
    #[arg(long = "inputNames", num_args = 1..)]
    pub input_names: Vec<String>,
    /// [Core ML] names of the model outputs
    #[arg(long = "outputNames", num_args = 1..)]
    pub output_names: Vec<String>,
    /// [Core ML] inputs to treat as images
    #[arg(long = "imageInputNames")]
    pub image_input_names: Vec<String>,
    /// [Core ML] image channel order is BGR
    #[arg(long = "isBGR")]
    pub is_bgr: bool,
    /// [Core ML] red channel bias
    #[arg(long = "redBias")]
    pub red_bias: Option<f32>,
    /// [Core ML] green channel bias
    #[arg(long = "greenBias")]
    pub green_bias: Option<f32>,
    /// [Core ML] blue channel bias
    #[arg(long = "blueBias")]
    pub blue_bias: Option<f32>,
    /// [Core ML] gray channel bias
    #[arg(long = "grayBias")]
    pub gray_bias: Option<f32>,
    /// [Core ML] image scale
    #[arg(long = "scale")]
    pub scale: Option<f32>,
    /// [Core ML] class label file (makes a classifier)
    #[arg(long = "classInputPath")]
    pub class_input_path: Option<PathBuf>,
    /// [Core ML] name of the predicted-class output
    #[arg(long = "predictedFeatureName")]
    pub predicted_feature_name: Option<String>,
}

impl CoremlFlags {
    /// Names of the Core ML flags that were given.
    pub fn given(&self) -> Vec<&'static str> {
        let mut v = vec![];
        let mut add = |on: bool, name| {
            if on {
                v.push(name)
            }
        };
        add(!self.input_names.is_empty(), "--inputNames");
        add(!self.output_names.is_empty(), "--outputNames");
        add(!self.image_input_names.is_empty(), "--imageInputNames");
        add(self.is_bgr, "--isBGR");
        add(self.red_bias.is_some(), "--redBias");
        add(self.green_bias.is_some(), "--greenBias");
        add(self.blue_bias.is_some(), "--blueBias");
        add(self.gray_bias.is_some(), "--grayBias");
        add(self.scale.is_some(), "--scale");
        add(self.class_input_path.is_some(), "--classInputPath");
        add(
            self.predicted_feature_name.is_some(),
            "--predictedFeatureName",
        );
        v
    }
}

impl TargetFlags {
    /// The target-specific flags that were given (checked against the target's backend).
    pub fn given(&self) -> Vec<&'static str> {
        let mut v = self.coreml.given();
        v.extend(self.onnx.given());
        if self.dump_tag.is_some() {
            v.push("--dump_tag");
        }
        v
    }

    /// The options handed to `target`'s backend, after checking that each target-specific
    /// flag given (these, and `--format`) belongs to it; a usage error message otherwise.
    pub fn options(
        &self,
        target: &str,
        format: Option<&str>,
        python: Option<PathBuf>,
    ) -> Result<TargetOptions, String> {
        let mut given = self.given();
        if format.is_some() {
            given.push("--format");
        }
        check_flags(target, &given)?;
        Ok(TargetOptions {
            python,
            format: format.map(str::to_string),
            opset: self.onnx.opset,
            external_data: self.onnx.external_data,
        })
    }
}

/// The ONNX target's flags (`convert`, `tocode`, `tomodel`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OnnxFlags {
    /// [ONNX] opset of the written model (13 to 25; default 17, or the first later opset that
    /// has the model's element types and nodes, e.g. 19 for float8 or dilated average pooling)
    #[arg(long, value_parser = clap::value_parser!(i64).range(
        super::onnx::MIN_OPSET..=super::onnx::MAX_OPSET))]
    pub opset: Option<i64>,
    /// [ONNX] write the weights to <model>.data even when the model fits in 2 GB
    #[arg(long = "external-data")]
    pub external_data: bool,
}

impl OnnxFlags {
    /// The flags that were given.
    pub fn given(&self) -> Vec<&'static str> {
        let mut v = vec![];
        if self.opset.is_some() {
            v.push("--opset");
        }
        if self.external_data {
            v.push("--external-data");
        }
        v
    }
}
