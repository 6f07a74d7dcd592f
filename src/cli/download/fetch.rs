//! One file over HTTP(S) (ureq, rustls): into `<dest>.part`, resumed with a Range request when a
//! partial file is there, a progress bar on a terminal only, and the checksum verified before
//! the file is renamed into place (a mismatch deletes the partial file).
use super::catalogue::Checksum;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What to fetch and how to check it.
pub struct Download<'a> {
    pub url: &'a str,
    pub dest: &'a Path,
    pub checksum: &'a Checksum,
    /// The exact size, when known: a server announcing another size is refused.
    pub size: Option<u64>,
}

pub enum Outcome {
    /// Downloaded (or completed) now: the file's size.
    Fetched(u64),
    /// `dest` was already there with the right checksum.
    AlreadyThere,
}

/// The partial file beside `dest`.
pub fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

pub fn fetch(d: &Download) -> Result<Outcome> {
    if d.dest.is_file() {
        let digest = hash_file(d.dest, d.checksum)?;
        if d.checksum.matches(&digest) {
            return Ok(Outcome::AlreadyThere);
        }
        eprintln!(
            "{} is there but does not have the {}: downloading it again",
            d.dest.display(),
            d.checksum
        );
    }
    let part = part_path(d.dest);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(format!("mmdnn/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    // A second round only when the server's answer to a Range request does not fit the file.
    for round in 0..2 {
        let offset = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        match transfer(&agent, d, &part, offset)? {
            Transfer::Done => break,
            Transfer::Restart if round == 0 => {
                eprintln!(
                    "{} answered the resume request with another range: starting over",
                    d.url
                );
                remove(&part)?;
            }
            Transfer::Restart => bail!("{} keeps answering with the wrong byte range", d.url),
        }
    }
    let digest = hash_file(&part, d.checksum)?;
    if !d.checksum.matches(&digest) {
        let bytes = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        remove(&part)?;
        bail!(
            "checksum mismatch for {}: expected {}, got {} {digest} ({bytes} bytes); the \
             download was deleted",
            d.url,
            d.checksum,
            if d.checksum.is_md5() { "md5" } else { "sha256" }
        );
    }
    let bytes = std::fs::metadata(&part)?.len();
    std::fs::rename(&part, d.dest)
        .with_context(|| format!("cannot rename {} to {}", part.display(), d.dest.display()))?;
    Ok(Outcome::Fetched(bytes))
}

enum Transfer {
    /// The part file holds everything the server has (to be verified).
    Done,
    /// The server's range does not continue the part file.
    Restart,
}

/// One request: the whole file, or from `offset` when a part file is there.
fn transfer(agent: &ureq::Agent, d: &Download, part: &Path, offset: u64) -> Result<Transfer> {
    let mut request = agent.get(d.url);
    if offset > 0 {
        request = request.header("Range", format!("bytes={offset}-"));
    }
    let response = request.call().map_err(|e| {
        let hint = match e {
            ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Io(_)
            | ureq::Error::Timeout(_) => {
                "; check the network connection, or point MMDNN_DOWNLOAD_BASE at a mirror that \
                 holds the file"
            }
            _ => "",
        };
        anyhow::anyhow!("cannot download {}: {e}{hint}", d.url)
    })?;
    let status = response.status().as_u16();
    let start = match status {
        200 => {
            if offset > 0 {
                eprintln!("{} does not resume downloads: starting over", d.url);
            }
            0
        }
        206 => {
            let range = response
                .headers()
                .get("content-range")
                .and_then(|v| v.to_str().ok())
                .and_then(range_start);
            if range != Some(offset) {
                return Ok(Transfer::Restart);
            }
            offset
        }
        // Nothing left past `offset`: the part file may be complete (the checksum tells).
        416 if offset > 0 => return Ok(Transfer::Done),
        _ => bail!(
            "cannot download {}: HTTP {status} {}",
            d.url,
            response.status().canonical_reason().unwrap_or_default()
        ),
    };
    let total = response.body().content_length().map(|n| n + start);
    if let (Some(want), Some(got)) = (d.size, total) {
        if want != got {
            bail!(
                "{} sends {got} bytes, but the catalogue's file has {want}: not the catalogued \
                 file",
                d.url
            );
        }
    }
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .append(start > 0)
        .truncate(start == 0)
        .open(part)
        .with_context(|| format!("cannot write {}", part.display()))?;
    if start > 0 {
        eprintln!("resuming {} at byte {start}", part.display());
    } else {
        eprintln!("downloading {} to {}", d.url, part.display());
    }
    let bar = progress_bar(total, start);
    let mut reader = response.into_body().into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    let mut have = start;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                file.flush()?;
                let of = total.map(|t| format!(" of {t}")).unwrap_or_default();
                bail!(
                    "download of {} interrupted after {have}{of} bytes ({e}); {} is kept: run \
                     the same command again to resume",
                    d.url,
                    part.display()
                );
            }
        };
        file.write_all(&buf[..n])
            .with_context(|| format!("cannot write {}", part.display()))?;
        have += n as u64;
        bar.set_position(have);
    }
    file.sync_all()
        .with_context(|| format!("cannot write {}", part.display()))?;
    bar.finish_and_clear();
    Ok(Transfer::Done)
}

/// A byte progress bar on a terminal; hidden otherwise (logs and pipes get plain lines).
fn progress_bar(total: Option<u64>, start: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    };
    let template = "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_position(start);
    bar
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` value.
fn range_start(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    rest.split('-').next()?.trim().parse().ok()
}

/// The file's digest, in the algorithm `checksum` uses, as lower-case hex.
pub fn hash_file(path: &Path, checksum: &Checksum) -> Result<String> {
    let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let digest = if checksum.is_md5() {
        digest_of::<md5::Md5>(file)
    } else {
        digest_of::<sha2::Sha256>(file)
    };
    digest.with_context(|| format!("cannot read {}", path.display()))
}

fn digest_of<D: sha2::Digest>(mut r: impl Read) -> std::io::Result<String> {
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot delete {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_start() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/1"), Some(0));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start("items 1-2/3"), None);
    }

    #[test]
    fn digests_of_known_inputs() {
        let md5 = Checksum::Md5(String::new());
        let sha = Checksum::Sha256(String::new());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            hash_file(&p, &md5).unwrap(),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            hash_file(&p, &sha).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(part_path(&p), dir.path().join("abc.part"));
    }
}
