//! The model catalogue `mmdnn download` serves: `catalogue.json` beside this file (embedded), or
//! the file named by `MMDNN_DOWNLOAD_CATALOGUE`. Each entry names one file, where it lives and the
//! checksum its upstream project pins; `MMDNN_DOWNLOAD_BASE` moves every file to one mirror.
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::fmt;

/// Replaces the built-in catalogue (same JSON layout).
pub const CATALOGUE_ENV: &str = "MMDNN_DOWNLOAD_CATALOGUE";
/// A mirror holding every catalogue file under its upstream file name: `$BASE/<file>`.
pub const BASE_ENV: &str = "MMDNN_DOWNLOAD_BASE";

const BUILT_IN: &str = include_str!("catalogue.json");

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogueFile {
    /// Free text for the human reader.
    #[serde(default, rename = "about")]
    _about: serde::de::IgnoredAny,
    models: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    framework: String,
    name: String,
    #[serde(default)]
    description: String,
    url: String,
    md5: Option<String>,
    sha256: Option<String>,
    sha256_prefix: Option<String>,
    size: Option<u64>,
    approx_mib: Option<f64>,
    contents: Contents,
    /// Where the checksum comes from.
    #[serde(default)]
    pinned_by: String,
}

/// What a catalogue file holds.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Contents {
    /// Architecture and weights: `mmdnn convert` reads it alone.
    Model,
    /// Weights only (a Keras `save_weights` file, a PyTorch state dict): no architecture.
    Weights,
}

/// The digest a downloaded file must have.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Checksum {
    Md5(String),
    Sha256(String),
    /// The first hex digits of the SHA-256 (torch.hub's convention: they are in the file name).
    Sha256Prefix(String),
}

impl Checksum {
    /// Whether `hex`, the full digest of the algorithm this checksum uses, matches it.
    pub fn matches(&self, hex: &str) -> bool {
        match self {
            Checksum::Md5(want) | Checksum::Sha256(want) => hex == want,
            Checksum::Sha256Prefix(prefix) => hex.starts_with(prefix.as_str()),
        }
    }

    pub fn is_md5(&self) -> bool {
        matches!(self, Checksum::Md5(_))
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Checksum::Md5(h) => write!(f, "md5 {h}"),
            Checksum::Sha256(h) => write!(f, "sha256 {h}"),
            Checksum::Sha256Prefix(h) => write!(f, "sha256 starting with {h}"),
        }
    }
}

/// One downloadable file.
#[derive(Clone, Debug)]
pub struct Entry {
    pub framework: String,
    pub name: String,
    pub description: String,
    pub url: String,
    pub checksum: Checksum,
    /// Exact size in bytes, when upstream states it.
    pub size: Option<u64>,
    /// Approximate size in MiB, for display.
    pub approx_mib: Option<f64>,
    pub contents: Contents,
    /// Where the checksum comes from (upstream source file), when the catalogue says.
    pub pinned_by: String,
}

impl Entry {
    fn same_model(&self, other: &Entry) -> bool {
        self.framework == other.framework && self.name == other.name
    }

    /// The upstream file name (the URL's last path segment): the name it is saved under.
    pub fn file_name(&self) -> &str {
        file_name(&self.url).unwrap_or_default()
    }

    /// The URL to fetch: the catalogue's, or `base/<file name>` when a mirror is set.
    pub fn url_from(&self, base: Option<&str>) -> String {
        match base {
            Some(base) => format!("{}/{}", base.trim_end_matches('/'), self.file_name()),
            None => self.url.clone(),
        }
    }

    /// The size for display: exact, approximate (≈), or `?`.
    pub fn size_text(&self) -> String {
        match (self.size, self.approx_mib) {
            (Some(bytes), _) => format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0)),
            (None, Some(mib)) => format!("≈{mib:.1} MiB"),
            (None, None) => "?".into(),
        }
    }
}

/// The URL's last path segment, query and fragment stripped (None when it is empty).
fn file_name(url: &str) -> Option<&str> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let name = path.rsplit('/').next()?;
    (!name.is_empty() && path.contains("://")).then_some(name)
}

pub struct Catalogue {
    pub entries: Vec<Entry>,
    /// Where it was read from, for messages.
    pub origin: String,
}

impl Catalogue {
    /// The catalogue in force: `MMDNN_DOWNLOAD_CATALOGUE`'s file, else the built-in one.
    pub fn load() -> Result<Catalogue> {
        match std::env::var_os(CATALOGUE_ENV) {
            Some(path) => {
                let text = std::fs::read_to_string(&path).with_context(|| {
                    format!(
                        "cannot read the catalogue {} ({CATALOGUE_ENV})",
                        path.to_string_lossy()
                    )
                })?;
                Catalogue::parse(&text, &path.to_string_lossy())
            }
            None => Catalogue::built_in(),
        }
    }

    pub fn built_in() -> Result<Catalogue> {
        Catalogue::parse(BUILT_IN, "the built-in catalogue")
    }

    /// Parses and checks a catalogue; every bad entry is named in one error.
    pub fn parse(text: &str, origin: &str) -> Result<Catalogue> {
        let file: CatalogueFile =
            serde_json::from_str(text).with_context(|| format!("{origin} is not valid"))?;
        let mut entries = Vec::with_capacity(file.models.len());
        let mut problems = vec![];
        for raw in file.models {
            let id = format!("{} {}", raw.framework, raw.name);
            match entry(raw) {
                Ok(e) if entries.iter().any(|o: &Entry| o.same_model(&e)) => {
                    problems.push(format!("{id}: listed twice"))
                }
                Ok(e) => entries.push(e),
                Err(msg) => problems.push(format!("{id}: {msg}")),
            }
        }
        if !problems.is_empty() {
            bail!("{origin} has bad entries:\n  {}", problems.join("\n  "));
        }
        Ok(Catalogue {
            entries,
            origin: origin.to_string(),
        })
    }

    /// The entries of `framework`, in catalogue order.
    pub fn of<'a>(&'a self, framework: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .filter(move |e| e.framework == framework)
    }

    pub fn find(&self, framework: &str, name: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.framework == framework && e.name == name)
    }

    /// The frameworks that have entries, in catalogue order.
    pub fn frameworks(&self) -> Vec<&str> {
        let mut v: Vec<&str> = vec![];
        for e in &self.entries {
            if !v.contains(&e.framework.as_str()) {
                v.push(&e.framework);
            }
        }
        v
    }

    /// The listing `--list` prints: per framework, one line per model and its URL below.
    pub fn listing(&self, framework: Option<&str>, base: Option<&str>) -> String {
        let mut out = String::new();
        for fw in self.frameworks() {
            if framework.is_some_and(|f| f != fw) {
                continue;
            }
            let models: Vec<&Entry> = self.of(fw).collect();
            out.push_str(&format!("{fw} ({} models)\n", models.len()));
            for e in models {
                let kind = match e.contents {
                    Contents::Model => "model",
                    Contents::Weights => "weights",
                };
                out.push_str(&format!(
                    "  {:<20} {:>11}  {kind:<7}  {}\n  {:<20} {}\n",
                    e.name,
                    e.size_text(),
                    e.description,
                    "",
                    e.url_from(base)
                ));
            }
        }
        out
    }
}

/// Checks one raw entry: a URL with a file name, exactly one well-formed checksum.
fn entry(raw: RawEntry) -> Result<Entry, String> {
    if !(raw.url.starts_with("https://") || raw.url.starts_with("http://")) {
        return Err(format!("url '{}' is not http(s)", raw.url));
    }
    if file_name(&raw.url).is_none() {
        return Err(format!("url '{}' names no file", raw.url));
    }
    if raw.name.is_empty() || raw.framework.is_empty() {
        return Err("empty framework or name".into());
    }
    let checksum = match (raw.md5, raw.sha256, raw.sha256_prefix) {
        (Some(h), None, None) => Checksum::Md5(hex_of_len(h, 32..=32)?),
        (None, Some(h), None) => Checksum::Sha256(hex_of_len(h, 64..=64)?),
        (None, None, Some(h)) => Checksum::Sha256Prefix(hex_of_len(h, 8..=64)?),
        _ => return Err("needs exactly one of md5, sha256, sha256_prefix".into()),
    };
    Ok(Entry {
        framework: raw.framework,
        name: raw.name,
        description: raw.description,
        url: raw.url,
        checksum,
        size: raw.size,
        approx_mib: raw.approx_mib,
        contents: raw.contents,
        pinned_by: raw.pinned_by,
    })
}

fn hex_of_len(h: String, len: std::ops::RangeInclusive<usize>) -> Result<String, String> {
    let h = h.to_ascii_lowercase();
    if len.contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(h)
    } else {
        Err(format!(
            "checksum '{h}' is not {}..{} hex digits",
            len.start(),
            len.end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_catalogue_is_well_formed() {
        let c = Catalogue::built_in().unwrap();
        assert!((10..=30).contains(&c.entries.len()), "{}", c.entries.len());
        assert_eq!(c.frameworks(), ["keras", "pytorch", "onnx"]);
        for e in &c.entries {
            assert!(e.url.starts_with("https://"), "{}", e.url);
            match (&e.checksum, e.framework.as_str()) {
                // keras.applications pins md5 file hashes.
                (Checksum::Md5(_), "keras") => {
                    assert!(e.url.starts_with(
                        "https://storage.googleapis.com/tensorflow/keras-applications/"
                    ));
                    assert_eq!(e.contents, Contents::Weights);
                }
                // torch.hub checks the hex digits after the last '-' of the file name.
                (Checksum::Sha256Prefix(p), "pytorch") => {
                    assert!(e.url.starts_with("https://download.pytorch.org/models/"));
                    let stem = e.file_name().strip_suffix(".pth").unwrap();
                    assert_eq!(stem.rsplit('-').next().unwrap(), p, "{}", e.name);
                    assert!(e.approx_mib.is_some());
                }
                // The ONNX Model Zoo's Git LFS pointers give the sha256 and the exact size.
                (Checksum::Sha256(_), "onnx") => {
                    assert!(e
                        .url
                        .starts_with("https://github.com/onnx/models/raw/main/"));
                    assert!(e.size.is_some());
                    assert_eq!(e.contents, Contents::Model);
                }
                (c, fw) => panic!("{fw} {}: unexpected checksum {c}", e.name),
            }
        }
        // Names MMdnn's mmdownload used.
        for (fw, name) in [
            ("keras", "densenet"),
            ("keras", "nasnet"),
            ("pytorch", "vgg19_bn"),
        ] {
            assert!(c.find(fw, name).is_some(), "{fw} {name}");
        }
    }

    #[test]
    fn mirror_keeps_the_file_name() {
        let c = Catalogue::built_in().unwrap();
        let e = c.find("pytorch", "resnet50").unwrap();
        assert_eq!(e.file_name(), "resnet50-0676ba61.pth");
        assert_eq!(
            e.url_from(Some("http://127.0.0.1:8000/m/")),
            "http://127.0.0.1:8000/m/resnet50-0676ba61.pth"
        );
        assert_eq!(e.url_from(None), e.url);
    }

    #[test]
    fn bad_entries_are_all_named() {
        let text = r#"{"models": [
            {"framework": "onnx", "name": "a", "url": "https://h/a.onnx", "contents": "model"},
            {"framework": "onnx", "name": "b", "url": "https://h/", "md5": "00", "contents": "model"},
            {"framework": "onnx", "name": "c", "url": "ftp://h/c", "sha256": "ab", "contents": "model"},
            {"framework": "onnx", "name": "d", "url": "https://h/d", "md5": "0123456789abcdef0123456789ABCDEF",
             "contents": "model"},
            {"framework": "onnx", "name": "d", "url": "https://h/d2", "sha256_prefix": "0123abcd",
             "contents": "weights"}
        ]}"#;
        let err = Catalogue::parse(text, "test.json")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("onnx a: needs exactly one"), "{err}");
        assert!(
            err.contains("onnx b: url 'https://h/' names no file"),
            "{err}"
        );
        assert!(
            err.contains("onnx c: url 'ftp://h/c' is not http(s)"),
            "{err}"
        );
        assert!(err.contains("onnx d: listed twice"), "{err}");
        assert!(!err.contains("onnx d: checksum"), "{err}");
    }

    #[test]
    fn checksums_match_whole_digests_or_prefixes() {
        let full = "0676ba61b8ac59b62cbc3cda4ca5dc5bb44fd7e0a9b52c5a7da0e4eab91c5c97";
        assert!(Checksum::Sha256Prefix("0676ba61".into()).matches(full));
        assert!(!Checksum::Sha256Prefix("0676ba62".into()).matches(full));
        assert!(Checksum::Sha256(full.into()).matches(full));
        assert!(!Checksum::Sha256(full.into()).matches(&full[..63]));
        assert!(Checksum::Md5("ab".repeat(16)).is_md5());
    }

    #[test]
    fn listing_filters_by_framework() {
        let c = Catalogue::built_in().unwrap();
        let all = c.listing(None, None);
        assert!(all.contains("keras (8 models)") && all.contains("onnx (7 models)"));
        let pt = c.listing(Some("pytorch"), None);
        assert!(pt.contains("resnet50-0676ba61.pth") && pt.contains("≈97.8 MiB"));
        assert!(!pt.contains("keras"));
    }
}
