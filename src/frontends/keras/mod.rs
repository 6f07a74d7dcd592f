//! The Keras frontend, native: reads Keras 2 / tf.keras `.h5` (model_config + model_weights),
//! Keras 3 `.keras` (a zip of config.json and model.weights.h5) and Keras 3 `.h5`, and MMdnn's
//! pair `-n model.json -w weights.h5` (the weights from `save_weights`, either layout).
//!
//! [`config`] parses the architecture, [`convert`] builds the IR graph with one function per
//! layer class ([`layers`]), [`h5`] indexes and reads the HDF5 weights and [`weights`] is the
//! lazy reader that transforms each tensor as it is read. Every layer that cannot be converted is
//! listed in one error before anything is built.
mod config;
mod convert;
mod h5;
mod layers;
mod weights;

use super::{Loaded, SourceArgs};
use crate::frontends::builder::finish_model;
use anyhow::{bail, Context, Result};
use serde_json::Value as Json;
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a file is, from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Hdf5,
    Zip,
    Json,
}

fn kind_of(path: &Path) -> Result<Kind> {
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut head = vec![0u8; 8];
    let n = f.read(&mut head)?;
    head.truncate(n);
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Ok(Kind::Zip);
    }
    if head.starts_with(b"\x89HDF\r\n\x1a\n") || hdf5_after_userblock(&mut f)? {
        return Ok(Kind::Hdf5);
    }
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(Kind::Json);
    }
    bail!(
        "{} is not a Keras model: expected an HDF5 file (.h5), a .keras zip or a JSON architecture",
        path.display()
    )
}

/// HDF5 allows a user block of 512·2ⁿ bytes before the signature.
fn hdf5_after_userblock(f: &mut std::fs::File) -> Result<bool> {
    use std::io::{Seek, SeekFrom};
    let len = f.metadata()?.len();
    let mut at = 512u64;
    while at + 8 <= len {
        let mut sig = [0u8; 8];
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(&mut sig)?;
        if &sig == b"\x89HDF\r\n\x1a\n" {
            return Ok(true);
        }
        at *= 2;
    }
    Ok(false)
}

/// The architecture, the weights file and the Keras version of a source.
struct Source {
    model: Json,
    weights: Option<h5::H5File>,
    keras3: bool,
    version: String,
    /// Keeps an extracted `model.weights.h5` alive while it is read.
    temp: Option<crate::output::TempDir>,
}

/// The most a `.keras` archive's config.json or metadata.json may hold.
const TEXT_CEILING: u64 = 64 << 20;

/// Reads a `.keras` archive: config.json, metadata.json and model.weights.h5. No entry may
/// appear twice or inflate past the size it declares (`weights::zip_read`); a stored weights
/// file is read in place, a compressed one is inflated into a file only this user can read, in
/// a temporary directory removed when the model is dropped or on a signal.
fn open_keras_zip(path: &Path) -> Result<Source> {
    use crate::weights::zip_read;
    let map = crate::weights::mapped::FileMap::open(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .bytes();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&map[..]))
        .with_context(|| format!("{} is not a valid zip", path.display()))?;
    zip_read::unique_names(&map, zip.central_directory_start(), path)?;
    let mut text = |name: &str| -> Result<Option<String>> {
        match zip.by_name(name) {
            Ok(mut entry) => {
                let bytes = zip_read::read_entry(&mut entry, TEXT_CEILING, path)?;
                let text = String::from_utf8(bytes)
                    .map_err(|_| anyhow::anyhow!("{}: {name} is not UTF-8 text", path.display()))?;
                Ok(Some(text))
            }
            Err(zip::result::ZipError::FileNotFound) => Ok(None),
            Err(e) => Err(e).with_context(|| format!("{}: cannot read {name}", path.display())),
        }
    };
    let config =
        text("config.json")?.with_context(|| format!("{} has no config.json", path.display()))?;
    let version = text("metadata.json")?
        .and_then(|m| serde_json::from_str::<Json>(&m).ok())
        .and_then(|m| {
            m.get("keras_version")
                .and_then(Json::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "3".into());
    let shown = path.join("model.weights.h5");
    let (weights, temp) = match zip.by_name("model.weights.h5") {
        Ok(entry) if entry.compression() == zip::CompressionMethod::Stored => {
            let start = usize::try_from(entry.data_start()).unwrap_or(usize::MAX);
            let len = usize::try_from(entry.size()).unwrap_or(usize::MAX);
            let range = start..start.saturating_add(len);
            (Some(h5::H5File::open_in_place(path, range, &shown)?), None)
        }
        Ok(mut entry) => {
            let dir = crate::output::TempDir::new()?;
            check_space(dir.path(), entry.size(), &shown)?;
            let out = dir.path().join("model.weights.h5");
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options
                .open(&out)
                .with_context(|| format!("cannot create {}", out.display()))?;
            zip_read::copy_entry(&mut entry, &mut file, u64::MAX, path)?;
            (Some(h5::H5File::open_as(&out, &shown)?), Some(dir))
        }
        Err(zip::result::ZipError::FileNotFound) => (None, None),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("{}: cannot read model.weights.h5", path.display()))
        }
    };
    Ok(Source {
        model: serde_json::from_str(&config)
            .with_context(|| format!("{}: config.json is not valid JSON", path.display()))?,
        weights,
        keras3: true,
        version,
        temp,
    })
}

/// Refuses to inflate `needed` bytes into `dir` when its file system has less room.
#[cfg(target_os = "linux")]
fn check_space(dir: &Path, needed: u64, shown: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return Ok(());
    };
    // SAFETY: statvfs fills the zeroed struct for a NUL-terminated path.
    let free = unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return Ok(());
        }
        // The field types are narrower on some 32-bit targets.
        #[allow(clippy::useless_conversion)]
        u64::from(s.f_bavail).saturating_mul(u64::from(s.f_frsize))
    };
    if needed > free {
        bail!(
            "{} declares {needed} bytes once inflated; {} has only {free} bytes free",
            shown.display(),
            dir.display()
        );
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn check_space(_dir: &Path, _needed: u64, _shown: &Path) -> Result<()> {
    Ok(())
}

/// Reads a full-model `.h5`; a weights-only file is refused with what to pass instead.
fn open_h5_model(path: &Path) -> Result<Source> {
    let file = h5::H5File::open(path)?;
    let Some(config) = file.attr_string("/", "model_config")? else {
        bail!(
            "{} holds only weights (no model_config): pass the architecture too, as \
             `-n model.json -w {}` with model.json from model.to_json()",
            path.display(),
            path.display()
        );
    };
    let version = file.attr_string("/", "keras_version")?.unwrap_or_default();
    Ok(Source {
        model: serde_json::from_str(&config).context("model_config is not valid JSON")?,
        keras3: version.starts_with('3'),
        version,
        weights: Some(file),
        temp: None,
    })
}

/// Reads a JSON architecture and the weights file given with it.
fn open_json(path: &Path, weights: Option<&Path>) -> Result<Source> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let model: Json = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let version = model
        .get("keras_version")
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_string();
    let keras3 = version.starts_with('3') || model.get("module").is_some();
    let weights = match weights {
        Some(w) => {
            if kind_of(w)? != Kind::Hdf5 {
                bail!("{} is not an HDF5 weights file", w.display());
            }
            Some(h5::H5File::open(w)?)
        }
        None => None,
    };
    Ok(Source {
        model,
        weights,
        keras3,
        version,
        temp: None,
    })
}

/// Picks the files: `-n model.json -w weights.h5`, or one model file given as -n or -w.
fn open(args: &SourceArgs) -> Result<(PathBuf, Source)> {
    let main = args
        .network
        .clone()
        .or_else(|| args.weights.clone())
        .context("reading a Keras model needs a file: pass -n model.h5 (or .keras), or -n model.json -w weights.h5")?;
    let extra_weights = args.weights.as_deref().filter(|w| *w != main);
    let source = match kind_of(&main)? {
        Kind::Json => open_json(&main, extra_weights)?,
        kind => {
            let mut source = if kind == Kind::Zip {
                open_keras_zip(&main)
            } else {
                open_h5_model(&main)
            }
            .with_context(|| format!("reading Keras model {}", main.display()))?;
            // A full model given with other weights (-n model.h5 -w other.h5) reads those.
            if let Some(w) = extra_weights {
                source.weights = Some(h5::H5File::open(w)?);
            }
            source
        }
    };
    Ok((main, source))
}

/// Keras 2 and 3 models.
pub struct Keras;

/// The signature every HDF5 file starts with.
const HDF5_MAGIC: &[u8] = b"\x89HDF\r\n\x1a\n";

impl super::Frontend for Keras {
    fn name(&self) -> &'static str {
        "keras"
    }
    fn formats(&self) -> &'static str {
        ".h5, .keras, or -n model.json -w weights.h5"
    }
    /// An HDF5 file, a JSON architecture (`{"class_name": …`), or a `.keras` archive (a zip,
    /// which says nothing more by its first bytes).
    fn detects(&self, path: &Path, head: &[u8]) -> bool {
        let json = String::from_utf8_lossy(head);
        head.starts_with(HDF5_MAGIC)
            || (json.trim_start().starts_with('{') && json.contains("\"class_name\""))
            || matches!(super::extension(path).as_str(), "h5" | "hdf5" | "keras")
    }
    fn read(&self, args: &SourceArgs) -> Result<Loaded> {
        load(args)
    }
}

/// Loads a Keras model.
pub fn load(args: &SourceArgs) -> Result<Loaded> {
    let (path, source) = open(args)?;
    let at = || format!("converting Keras model {}", path.display());
    let model = config::parse_model(&source.model).with_context(at)?;
    let bad = layers::unsupported(&model);
    if !bad.is_empty() {
        return Err(super::Unconverted {
            message: format!(
                "{}: {} layer(s) cannot be converted: {}",
                path.display(),
                bad.len(),
                bad.join(", ")
            ),
            problems: bad,
            partial: None,
        }
        .into());
    }
    let index = source.weights.map(h5::WeightIndex::new);
    let scope = index
        .as_ref()
        .map(|i| i.root_scope())
        .transpose()
        .with_context(at)?;
    let mut cx = convert::Cx::new(index.as_ref(), source.keras3, &args.input_shapes);
    let converted = convert::convert_model(&mut cx, &model, scope.as_ref(), None, "");
    // Every failing layer is a problem of the builder's; any other error is the model's own.
    let outputs = match converted {
        Ok(outputs) => outputs,
        Err(_) if cx.core.has_problems() => vec![],
        Err(e) => return Err(e.context(at())),
    };
    let entries = std::mem::take(&mut cx.weights);
    let mut graph = cx.core.finish(outputs).with_context(at)?;
    graph.producer = format!("keras {}", source.version).trim().to_string();
    let names: Vec<&str> = model.outputs.iter().map(|o| o.layer.as_str()).collect();
    graph.output_names = super::builder::unique_names(&names);
    let reader = weights::reader(index.map(|i| i.file), entries, source.temp);
    finish_model(graph, Box::new(reader), true).with_context(at)
}
