//! `mmdnn download` (MMdnn's `mmdownload`): fetches a pretrained model named in the catalogue
//! (`catalogue.rs`) into `-o DIR`, verifies the checksum its upstream pins (`fetch.rs`), and with
//! `--convert-to FW` converts it through the same pipeline as `mmdnn convert`.
mod catalogue;
mod fetch;

use super::args::{source_parser, target_parser, usage_error, ParserFlags};
use super::convert;
use crate::{backends, frontends};
use anyhow::{bail, Context, Result};
use catalogue::{Catalogue, Contents, Entry, BASE_ENV};
use fetch::{fetch, Download, Outcome};
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
#[command(
    after_help = "The catalogue: `mmdnn download --list`. MMDNN_DOWNLOAD_BASE=URL fetches \
                        every file from URL/<file name> (a mirror); MMDNN_DOWNLOAD_CATALOGUE=FILE \
                        replaces the catalogue (same JSON layout as the built-in one)."
)]
pub struct Args {
    /// Framework of the model (with --list or without -n: list its models)
    #[arg(short = 'f', long = "framework", value_parser = source_parser())]
    pub framework: Option<String>,
    /// Model name from the catalogue
    #[arg(short = 'n', long = "network", requires = "framework")]
    pub network: Option<String>,
    /// List the catalogue: every framework's models, or -f's
    #[arg(long, conflicts_with = "network")]
    pub list: bool,
    /// Download directory (created when missing); a partial download waits there as <file>.part
    #[arg(
        short = 'p',
        visible_short_alias = 'o',
        long = "path",
        default_value = "./"
    )]
    pub path: PathBuf,
    /// Convert the downloaded model to this framework, written as <path>/<network>.<ext>
    #[arg(long = "convert-to", value_name = "FRAMEWORK", value_parser = target_parser(),
          requires = "network")]
    pub convert_to: Option<String>,
    /// [MMdnn] image to classify after the download: not supported (use `mmdnn run`)
    #[arg(short = 'i', long = "image")]
    pub image: Option<PathBuf>,
    /// [MMdnn] label file for --image: not supported
    #[arg(short = 'l', long = "label")]
    pub label: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<i32> {
    if a.image.is_some() || a.label.is_some() {
        return Ok(usage_error(
            "-i/--image and -l/--label (MMdnn's classification of an image after the download) \
             are not supported: download the model, then run it with `mmdnn run`",
        ));
    }
    let catalogue = Catalogue::load()?;
    let base = std::env::var(BASE_ENV).ok().filter(|b| !b.is_empty());
    let framework = a.framework.as_deref().map(canonical);
    if let Some(fw) = &framework {
        if catalogue.of(fw).next().is_none() {
            return Ok(usage_error(&format!(
                "{} has no {fw} models (it lists only files with a live official source and a \
                 checksum pinned upstream); it has {} models",
                catalogue.origin,
                catalogue.frameworks().join(", ")
            )));
        }
    }
    let (Some(fw), Some(name), false) = (&framework, &a.network, a.list) else {
        if framework.is_none() && !a.list {
            return Ok(usage_error(
                "give -f FRAMEWORK -n NAME to download a model, or --list to see the catalogue",
            ));
        }
        print!(
            "{}",
            catalogue.listing(framework.as_deref(), base.as_deref())
        );
        return Ok(0);
    };
    let Some(entry) = catalogue.find(fw, name) else {
        let names: Vec<&str> = catalogue.of(fw).map(|e| e.name.as_str()).collect();
        return Ok(usage_error(&format!(
            "{} has no {fw} model '{name}'; its {fw} models: {}",
            catalogue.origin,
            names.join(", ")
        )));
    };
    if let Some(target) = &a.convert_to {
        check_convertible(entry, target)?;
    }
    let dest = download(entry, &a.path, base.as_deref())?;
    match a.convert_to {
        Some(target) => convert_download(entry, dest, &a.path, target),
        None => Ok(0),
    }
}

/// The registry's own name for a framework name or alias (`tf` → `tensorflow`).
fn canonical(name: &str) -> String {
    let ready = frontends::FRONTENDS
        .iter()
        .find(|f| f.name() == name || f.aliases().contains(&name))
        .map(|f| f.name());
    let planned = || {
        frontends::PLANNED
            .iter()
            .find(|p| p.matches(name))
            .map(|p| p.name)
    };
    ready.or_else(planned).unwrap_or(name).to_string()
}

/// Refuses, before anything is downloaded, a conversion that cannot work.
fn check_convertible(entry: &Entry, target: &str) -> Result<()> {
    if entry.contents == Contents::Weights {
        bail!(
            "{} {} holds weights only, without the architecture, so mmdnn cannot convert it \
             alone: download it without --convert-to, load it into its {} model, save the whole \
             model and pass that file to `mmdnn convert`",
            entry.framework,
            entry.name,
            entry.framework
        );
    }
    frontends::find(&entry.framework)?;
    backends::find(target)?;
    Ok(())
}

/// Fetches `entry` into `dir`; returns the file's path.
fn download(entry: &Entry, dir: &Path, base: Option<&str>) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the download directory {}", dir.display()))?;
    let url = entry.url_from(base);
    let dest = dir.join(entry.file_name());
    let outcome = fetch(&Download {
        url: &url,
        dest: &dest,
        checksum: &entry.checksum,
        size: entry.size,
    })?;
    let source = if entry.pinned_by.is_empty() {
        String::new()
    } else {
        format!(", as pinned by {}", entry.pinned_by)
    };
    match outcome {
        Outcome::AlreadyThere => println!(
            "{} {} is already in {} ({} verified{source})",
            entry.framework,
            entry.name,
            dest.display(),
            entry.checksum
        ),
        Outcome::Fetched(bytes) => println!(
            "{} {} downloaded to {} ({bytes} bytes, {} verified{source})",
            entry.framework,
            entry.name,
            dest.display(),
            entry.checksum
        ),
    }
    Ok(dest)
}

/// `mmdnn convert -sf <framework> -iw <file> -df <target> -om <dir>/<name>.<ext>`.
fn convert_download(entry: &Entry, file: PathBuf, dir: &Path, target: String) -> Result<i32> {
    let ext = backends::find(&target)?.model_extension();
    let out = dir.join(format!("{}.{ext}", entry.name));
    if out == file {
        bail!(
            "the converted model would overwrite the download {}: rename it first",
            file.display()
        );
    }
    let args = convert::Args {
        src_framework: entry.framework.clone(),
        input_network: None,
        input_weight: Some(file.clone()),
        dst_framework: target.clone(),
        output_model: out,
        io: Default::default(),
        format: None,
        python: None,
        parser: ParserFlags::default(),
        target: backends::TargetFlags {
            phase: "test".into(),
            ..Default::default()
        },
        report: super::summary::ReportFlags {
            quiet: false,
            json: false,
        },
    };
    convert::run(args).with_context(|| format!("converting {} to {target}", file.display()))
}
