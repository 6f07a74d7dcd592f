//! `mmdnn download` (MMdnn's `mmdownload`).
use super::args::source_parser;
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Framework of the model
    #[arg(short = 'f', long = "framework", value_parser = source_parser())]
    pub framework: String,
    /// Model name (omit to list the catalogue)
    #[arg(short = 'n', long = "network")]
    pub network: Option<String>,
    /// Image to run the model on after download
    #[arg(short = 'i', long = "image")]
    pub image: Option<PathBuf>,
    /// Download directory
    #[arg(short = 'p', short_alias = 'o', long = "path", default_value = "./")]
    pub path: PathBuf,
    /// Label file for --image
    #[arg(short = 'l', long = "label")]
    pub label: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<i32> {
    bail!(
        "mmdnn download is not implemented yet, so there is no {} model catalogue. MMdnn's \
         download hosts are mostly gone; build the model with its own framework (e.g. \
         keras.applications or torchvision) and pass the saved file to `mmdnn convert`",
        a.framework
    )
}
