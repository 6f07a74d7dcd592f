//! Reading zip archives we did not write (`.keras`, `.npz`) without trusting them: no two
//! entries may share a name (readers disagree on which one counts: Python's `zipfile` and Keras
//! take the last), an entry is never inflated past the size it declares (a zip bomb declaring
//! little stops there), and a declared size must be one deflate can reach from the entry's
//! compressed bytes and fit the caller's ceiling.
use anyhow::{bail, Result};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::path::Path;

/// Deflate's densest output: 258 bytes per 2 bits, about 1032 to 1; with room for headers.
pub fn max_inflated(compressed: u64) -> u64 {
    compressed.saturating_mul(1032).saturating_add(1024)
}

/// Refuses an archive (the bytes of the whole file) whose central directory, starting at
/// `dir_start`, names an entry twice.
pub fn unique_names(archive: &[u8], dir_start: u64, path: &Path) -> Result<()> {
    let mut seen = HashSet::new();
    let Ok(mut at) = usize::try_from(dir_start) else {
        return Ok(());
    };
    while let Some(head) = archive.get(at..at.saturating_add(46)) {
        if head[..4] != *b"PK\x01\x02" {
            break;
        }
        let word = |i: usize| usize::from(u16::from_le_bytes([head[i], head[i + 1]]));
        let (name_len, extra, comment) = (word(28), word(30), word(32));
        let Some(name) = archive.get(at + 46..at + 46 + name_len) else {
            break;
        };
        if !seen.insert(name) {
            bail!(
                "{} has two entries named '{}': refusing to guess which one is meant",
                path.display(),
                String::from_utf8_lossy(name)
            );
        }
        at += 46 + name_len + extra + comment;
    }
    Ok(())
}

/// Checks an entry's declared size against deflate's limit and `ceiling`.
pub fn check_declared(
    entry: &zip::read::ZipFile<'_, impl Read>,
    ceiling: u64,
    path: &Path,
) -> Result<()> {
    let (size, packed) = (entry.size(), entry.compressed_size());
    if entry.compression() != zip::CompressionMethod::Stored && size > max_inflated(packed) {
        bail!(
            "{}: entry '{}' declares {size} bytes, more than its {packed} compressed bytes can \
             hold",
            path.display(),
            entry.name()
        );
    }
    if size > ceiling {
        bail!(
            "{}: entry '{}' declares {size} bytes, more than the {ceiling} allowed for it",
            path.display(),
            entry.name()
        );
    }
    Ok(())
}

/// Copies an entry's bytes to `out`: at most the size it declares (which must be at most
/// `ceiling`); an entry that inflates further or falls short is refused.
pub fn copy_entry(
    entry: &mut zip::read::ZipFile<'_, impl Read>,
    out: &mut dyn Write,
    ceiling: u64,
    path: &Path,
) -> Result<u64> {
    check_declared(entry, ceiling, path)?;
    let declared = entry.size();
    let name = entry.name().to_string();
    let copied = std::io::copy(&mut entry.take(declared.saturating_add(1)), out)
        .map_err(|e| anyhow::anyhow!("{}: entry '{name}': {e}", path.display()))?;
    if copied > declared {
        bail!(
            "{}: entry '{name}' inflates to more than the {declared} bytes it declares",
            path.display()
        );
    }
    if copied < declared {
        bail!(
            "{}: entry '{name}' holds {copied} of the {declared} bytes it declares",
            path.display()
        );
    }
    Ok(copied)
}

/// An entry's bytes, read as [`copy_entry`] copies them.
pub fn read_entry(
    entry: &mut zip::read::ZipFile<'_, impl Read>,
    ceiling: u64,
    path: &Path,
) -> Result<Vec<u8>> {
    check_declared(entry, ceiling, path)?;
    let mut bytes = Vec::new();
    // The declared size is bounded by the ceiling, and fallible to reserve.
    bytes
        .try_reserve_exact(usize::try_from(entry.size()).unwrap_or(usize::MAX))
        .map_err(|_| {
            anyhow::anyhow!("{}: entry '{}' is too large", path.display(), entry.name())
        })?;
    copy_entry(entry, &mut bytes, ceiling, path)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn archive(entries: &[(&str, &[u8], zip::CompressionMethod)]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, data, method) in entries {
            let opts = zip::write::SimpleFileOptions::default().compression_method(*method);
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn a_repeated_name_is_refused_naming_it() {
        let stored = zip::CompressionMethod::Stored;
        let ok = archive(&[("a", b"1", stored), ("b", b"2", stored)]);
        let z = zip::ZipArchive::new(Cursor::new(&ok[..])).unwrap();
        unique_names(&ok, z.central_directory_start(), Path::new("x.zip")).unwrap();
        // The second name in the central directory respelled as the first.
        let dir = z.central_directory_start() as usize;
        let second = dir
            + 4
            + ok[dir + 4..]
                .windows(4)
                .position(|w| w == b"PK\x01\x02")
                .unwrap();
        let mut twice = ok.clone();
        twice[second + 46] = b'a';
        let err = unique_names(&twice, dir as u64, Path::new("x.zip")).unwrap_err();
        assert!(err.to_string().contains("two entries named 'a'"), "{err}");
    }
}
