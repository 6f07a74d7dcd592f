//! Argument spellings shared by the subcommands: MMdnn's single-dash long flags, command aliases
//! by program name, the parsers for framework names and `--inputShape`, and the interface flags
//! (`--io-layout`, `--keep-layout`).
use super::ALIASES;
use crate::frontends::SourceArgs;
use crate::ir::passes::layout::IoLayout;
use clap::builder::PossibleValuesParser;
use std::ffi::OsString;
use std::path::PathBuf;

/// MMdnn's single-dash long flags and the double-dash names they stand for.
const DASH_FLAGS: &[(&str, &str)] = &[
    ("-sf", "--srcFramework"),
    ("-df", "--dstFramework"),
    ("-in", "--inputNetwork"),
    ("-iw", "--inputWeight"),
    ("-om", "--outputModel"),
    ("-dw", "--dstWeightPath"),
    ("-ow", "--dstWeightPath"),
    ("-inode", "--inNodeName"),
    ("-node", "--dstNodeName"),
];

/// Rewrites argv so clap can parse it: spells MMdnn's single-dash long flags (also
/// `-sf=keras`) with two dashes. Returns the subcommand when invoked under an MMdnn command
/// name (`mmconvert` → `convert`), whose arguments argv then holds.
pub fn normalize(argv: Vec<OsString>) -> (Option<&'static str>, Vec<OsString>) {
    let mut out = Vec::with_capacity(argv.len());
    let mut it = argv.into_iter();
    let program = it.next().unwrap_or_else(|| "mmdnn".into());
    let stem = std::path::Path::new(&program)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sub = ALIASES
        .iter()
        .find(|(alias, _)| *alias == stem)
        .map(|(_, sub)| *sub);
    out.push(program);
    for arg in it {
        out.push(match arg.to_str() {
            Some(s) => rewrite_flag(s).map(OsString::from).unwrap_or(arg),
            None => arg,
        });
    }
    (sub, out)
}

fn rewrite_flag(arg: &str) -> Option<String> {
    let (flag, value) = match arg.split_once('=') {
        Some((f, v)) => (f, Some(v)),
        None => (arg, None),
    };
    let (_, long) = DASH_FLAGS.iter().find(|(short, _)| *short == flag)?;
    Some(match value {
        Some(v) => format!("{long}={v}"),
        None => long.to_string(),
    })
}

pub fn source_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(crate::frontends::source_names())
}

pub fn target_parser() -> PossibleValuesParser {
    PossibleValuesParser::new(crate::backends::target_names())
}

/// The source-model flags shared by `toir` and `convert` (MMdnn's parser options).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ParserFlags {
    /// [TensorFlow] input node names
    #[arg(long = "inNodeName", num_args = 1.., value_name = "NAME")]
    pub in_node_name: Vec<String>,
    /// [TensorFlow] output node names
    #[arg(long = "dstNodeName", num_args = 1.., value_name = "NAME")]
    pub dst_node_name: Vec<String>,
    /// Input shape per input, batch excluded, comma-separated (e.g. 3,224,224 or 224,224,3)
    #[arg(long = "inputShape", num_args = 1.., value_name = "SHAPE", value_parser = parse_shape)]
    pub input_shape: Vec<Vec<i64>>,
    /// Pin a symbolic dim to a size, any dim including the batch (e.g. --dim batch=1 --dim
    /// seq=128); `inspect` lists a model's symbols
    #[arg(long = "dim", value_name = "NAME=SIZE", value_parser = parse_dim)]
    pub dim: Vec<(String, i64)>,
    /// [Caffe] phase used when the prototxt is a train_val file
    #[arg(long = "caffePhase", value_parser = PossibleValuesParser::new(["TRAIN", "TEST", "train", "test"]))]
    pub caffe_phase: Option<String>,
    /// [Darknet] weight-file header layout: 1 = yolov3 style, 0 = yolov2
    #[arg(long = "darknetStart", value_parser = clap::value_parser!(u8).range(0..=1))]
    pub darknet_start: Option<u8>,
}

impl ParserFlags {
    pub fn source_args(&self, network: Option<PathBuf>, weights: Option<PathBuf>) -> SourceArgs {
        SourceArgs {
            network,
            weights,
            input_shapes: self.input_shape.clone(),
            dims: self.dim.iter().cloned().collect(),
            in_nodes: self.in_node_name.clone(),
            dst_nodes: self.dst_node_name.clone(),
            caffe_phase: self.caffe_phase.clone(),
            darknet_start: self.darknet_start,
        }
    }
}

/// Parses `3,224,224` (also `[3, 224, 224]`); `?` or -1 marks an unknown dim.
pub fn parse_shape(text: &str) -> Result<Vec<i64>, String> {
    text.trim_matches(|c| c == '[' || c == ']' || c == '(' || c == ')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s {
            "?" | "-1" | "None" => Ok(-1),
            _ => s
                .parse::<i64>()
                .ok()
                .filter(|&d| d > 0)
                .ok_or_else(|| format!("'{s}' in shape '{text}' is not a positive integer")),
        })
        .collect::<Result<Vec<_>, _>>()
        .and_then(|v| {
            if v.is_empty() {
                Err(format!("empty shape '{text}'"))
            } else {
                Ok(v)
            }
        })
}

/// Parses `NAME=SIZE` (`--dim batch=1`).
pub fn parse_dim(text: &str) -> Result<(String, i64), String> {
    let Some((name, size)) = text.split_once('=') else {
        return Err(format!("'{text}' is not NAME=SIZE"));
    };
    let size = size
        .trim()
        .parse::<i64>()
        .ok()
        .filter(|&d| d > 0)
        .ok_or_else(|| format!("'{size}' in '{text}' is not a positive integer"))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("'{text}' names no dim"));
    }
    Ok((crate::ir::dim::identifier(name), size))
}

/// A usage error found after parsing: printed like clap's, exit code 2.
pub fn usage_error(message: &str) -> i32 {
    eprintln!("error: {message}\n\nFor more information, try '--help'.");
    2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(args: &[&str]) -> (Option<&'static str>, Vec<String>) {
        let (sub, argv) = normalize(args.iter().map(OsString::from).collect());
        (
            sub,
            argv.into_iter().map(|s| s.into_string().unwrap()).collect(),
        )
    }

    #[test]
    fn mmdnn_names_and_dash_flags() {
        let (sub, argv) = norm(&[
            "/usr/bin/mmconvert",
            "-sf",
            "keras",
            "-iw=m.h5",
            "-in",
            "x",
            "-om",
            "o",
        ]);
        assert_eq!(sub, Some("convert"));
        assert_eq!(
            argv,
            [
                "/usr/bin/mmconvert",
                "--srcFramework",
                "keras",
                "--inputWeight=m.h5",
                "--inputNetwork",
                "x",
                "--outputModel",
                "o"
            ]
        );
        assert_eq!(
            norm(&["mmdnn", "toir", "-inode", "a"]),
            (
                None,
                ["mmdnn", "toir", "--inNodeName", "a"]
                    .map(String::from)
                    .to_vec()
            )
        );
        // Values that look like flags are left alone only when they are not MMdnn flags.
        assert_eq!(
            norm(&["mmtoir", "-f", "keras"]),
            (
                Some("toir"),
                ["mmtoir", "-f", "keras"].map(String::from).to_vec()
            )
        );
    }

    #[test]
    fn shapes() {
        assert_eq!(parse_shape("3,224,224"), Ok(vec![3, 224, 224]));
        assert_eq!(parse_shape("[224, 224, 3]"), Ok(vec![224, 224, 3]));
        assert_eq!(parse_shape("?,8"), Ok(vec![-1, 8]));
        assert!(parse_shape("3,x").is_err());
        assert!(parse_shape("0,3").is_err());
        assert!(parse_shape("").is_err());
    }
}

/// The layout of the converted model's inputs and outputs (`convert`, `tocode`, `tomodel`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct IoFlags {
    /// Layout of the converted model's inputs and outputs: keep (the default: the source's),
    /// channels_first or channels_last (every input and output whose layout is known), or
    /// LAYOUT:NAME,NAME… (only the inputs and outputs named)
    #[arg(long = "io-layout", value_name = "LAYOUT[:NAMES]", value_parser = IoLayout::parse)]
    pub io_layout: Option<IoLayout>,
    /// Keep the source's input and output layout: the default now (same as --io-layout keep)
    #[arg(long = "keep-layout", conflicts_with = "io_layout")]
    pub keep_layout: bool,
}

impl IoFlags {
    /// The interface layout asked for.
    pub fn io(&self) -> IoLayout {
        self.io_layout.clone().unwrap_or_default()
    }

    /// Whether either flag was given.
    pub fn given(&self) -> bool {
        self.keep_layout || self.io_layout.is_some()
    }
}
