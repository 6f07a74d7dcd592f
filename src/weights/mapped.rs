//! Read-only memory maps of input files (weights archives, model files), and the page
//! bookkeeping that keeps a conversion's memory near its largest tensor.
//!
//! Tensors read from a [`FileMap`] are zero-copy slices of it. A mapped page the process has
//! touched counts in its resident memory for as long as the map lives, so writing every tensor
//! of a 500 MB file out of its map would end up holding the whole file. Writers therefore go
//! through [`write_releasing`] (and transforms that need their own buffer through
//! [`copy_releasing`]): they work in chunks and hand each chunk's pages back to the OS once
//! done (the pages stay in the page cache). Only pages of live `FileMap`s are ever released:
//! every map registers its address range while it exists.
use anyhow::{Context, Result};
use bytes::Bytes;
use memmap2::Mmap;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Bytes handled per step: mapped, read (for a checksum), written and released. Small enough
/// to stay in a core's L2 cache between the steps: with 8 MB steps a copy re-read its chunk
/// from memory, and on a busy machine a 528 MB conversion then took two to five times as long
/// as with 256 KB ones (measured with a read/write copy loop against `cp`).
pub(crate) const CHUNK: usize = 256 << 10;

/// The live maps by start address: their length and the file they map.
static LIVE: Mutex<BTreeMap<usize, (usize, Arc<File>)>> = Mutex::new(BTreeMap::new());

/// A read-only map of a whole file.
#[derive(Clone)]
pub struct FileMap {
    map: Arc<Registered>,
}

/// A map listed in [`LIVE`] from creation until just before it is unmapped.
struct Registered(Mmap);

impl Drop for Registered {
    fn drop(&mut self) {
        LIVE.lock()
            .expect("map registry")
            .remove(&(self.0.as_ptr() as usize));
    }
}

/// Lets `Bytes` own a shared map.
struct Shared(Arc<Registered>);

impl AsRef<[u8]> for Shared {
    fn as_ref(&self) -> &[u8] {
        &self.0 .0[..]
    }
}

impl FileMap {
    pub fn open(path: &Path) -> Result<FileMap> {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        // SAFETY: the map is read-only; mmdnn never writes to an input file while reading it.
        let map = unsafe { Mmap::map(&file) }
            .with_context(|| format!("cannot map {}", path.display()))?;
        if !map.is_empty() {
            LIVE.lock()
                .expect("map registry")
                .insert(map.as_ptr() as usize, (map.len(), Arc::new(file)));
        }
        Ok(FileMap {
            map: Arc::new(Registered(map)),
        })
    }

    /// The whole file as `Bytes` (zero-copy; slices of it keep the map alive).
    pub fn bytes(&self) -> Bytes {
        Bytes::from_owner(Shared(self.map.clone()))
    }
}

/// Writes `data` to `w`. Where `data` lies in a live [`FileMap`], the pages of each chunk are
/// released from this process once written.
pub fn write_releasing<W: Write + ?Sized>(w: &mut W, data: &[u8]) -> std::io::Result<()> {
    for chunk in data.chunks(CHUNK) {
        let mapped = in_live_map(chunk);
        if mapped {
            advise(chunk, Advice::Populate);
        }
        w.write_all(chunk)?;
        if mapped {
            advise(chunk, Advice::Release);
        }
    }
    Ok(())
}

/// A copy of `data` in a buffer of its own. Where `data` lies in a live [`FileMap`], the pages
/// of each chunk are released from this process once copied.
pub fn copy_releasing(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mapped = in_live_map(data);
    for chunk in data.chunks(CHUNK) {
        out.extend_from_slice(chunk);
        if mapped {
            advise(chunk, Advice::Release);
        }
    }
    out
}

/// Releases this process's pages spanned by `part` if it lies in a live map (the caller's
/// borrow keeps that map alive for the duration); does nothing otherwise.
pub fn release(part: &[u8]) {
    if in_live_map(part) {
        advise(part, Advice::Release);
    }
}

/// Whether `part` lies within one live map.
fn in_live_map(part: &[u8]) -> bool {
    file_range(part).is_some()
}

/// The file and offset that `part` maps, if it lies within one live map.
pub(crate) fn file_range(part: &[u8]) -> Option<(Arc<File>, u64)> {
    if part.is_empty() {
        return None;
    }
    let start = part.as_ptr() as usize;
    let live = LIVE.lock().expect("map registry");
    let (&base, (len, file)) = live.range(..=start).next_back()?;
    (start + part.len() <= base + len).then(|| (file.clone(), (start - base) as u64))
}

/// Writes the rows `rows[0], rows[1], …` of `data` (rows of `row` bytes) to `w`, returning the
/// bytes written. Rows of a live map are read from its file with positioned reads into one
/// buffer, so none of the map's pages is ever touched (a reordering visits the source in no
/// useful order, and touched pages would stay resident); other data is copied from memory.
pub fn write_rows<W: Write + ?Sized>(
    w: &mut W,
    data: &[u8],
    row: usize,
    rows: &[usize],
) -> std::io::Result<u64> {
    let mut buf = Vec::with_capacity(CHUNK.max(row));
    let source = file_range(data);
    for &r in rows {
        if buf.len() + row > buf.capacity() {
            w.write_all(&buf)?;
            buf.clear();
        }
        let at = r * row;
        match &source {
            Some((file, offset)) => {
                let start = buf.len();
                buf.resize(start + row, 0);
                read_exact_at(file, &mut buf[start..], offset + at as u64)?;
            }
            None => buf.extend_from_slice(&data[at..at + row]),
        }
    }
    w.write_all(&buf)?;
    Ok((rows.len() * row) as u64)
}

#[cfg(unix)]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(not(unix))]
pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match std::os::windows::fs::FileExt::seek_read(
            file,
            &mut buf[done..],
            offset + done as u64,
        )? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => done += n,
        }
    }
    Ok(())
}

enum Advice {
    /// Map all the pages in one call (far cheaper than a fault per 4 KiB page).
    Populate,
    /// Drop the pages from this process (`MADV_DONTNEED`).
    Release,
}

/// `madvise` over the pages spanned by `part`, which lies in a live map (see `in_live_map`).
#[cfg(target_os = "linux")]
fn advise(part: &[u8], advice: Advice) {
    const PAGE: usize = 4096;
    let start = part.as_ptr() as usize;
    let first = start & !(PAGE - 1);
    let end = start + part.len();
    let advice = match advice {
        Advice::Populate => libc::MADV_POPULATE_READ,
        Advice::Release => libc::MADV_DONTNEED,
    };
    // SAFETY: the range lies in a private read-only file map that the caller's borrow keeps
    // alive: populating only maps pages in, and a released page is read back from the file,
    // unchanged, the next time it is touched, so no reference into it is invalidated. A
    // failure (an older kernel without MADV_POPULATE_READ, say) only costs speed or memory.
    unsafe {
        libc::madvise(first as *mut libc::c_void, end - first, advice);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_part: &[u8], _advice: Advice) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_pages_read_back_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data");
        let data: Vec<u8> = (0..(3 * CHUNK + 12345))
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let map = FileMap::open(&path).unwrap();
        let all = map.bytes();
        assert_eq!(
            copy_releasing(&all[100..CHUNK * 2 + 5]),
            &data[100..CHUNK * 2 + 5]
        );
        let mut written = Vec::new();
        write_releasing(&mut written, &all[5..CHUNK * 3 + 7]).unwrap();
        assert_eq!(written, &data[5..CHUNK * 3 + 7]);
        // Everything released reads back from the file.
        assert_eq!(&all[..], &data[..]);
    }

    #[test]
    fn rows_are_written_in_the_given_order_from_maps_and_memory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows");
        let row = 4099; // not a page multiple
        let data: Vec<u8> = (0..row * 700).map(|i| (i * 13 % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let map = FileMap::open(&path).unwrap();
        let all = map.bytes();
        let rows: Vec<usize> = (0..600).map(|i| (i * 7 + 3) % 700).collect();
        let expected: Vec<u8> = rows
            .iter()
            .flat_map(|&r| data[r * row..(r + 1) * row].iter().copied())
            .collect();
        // From the map (positioned reads), from a slice of it, and from plain memory.
        let mut from_map = Vec::new();
        let n = write_rows(&mut from_map, &all, row, &rows).unwrap();
        assert_eq!(n as usize, expected.len());
        assert_eq!(from_map, expected);
        let tail = &all[row..];
        let shifted: Vec<usize> = rows.iter().filter(|&&r| r > 0).map(|&r| r - 1).collect();
        let mut from_slice = Vec::new();
        write_rows(&mut from_slice, tail, row, &shifted).unwrap();
        let mut from_memory = Vec::new();
        write_rows(&mut from_memory, &data[row..], row, &shifted).unwrap();
        assert_eq!(from_slice, from_memory);
        assert_eq!(from_memory.len(), shifted.len() * row);
    }

    #[test]
    fn memory_outside_maps_is_left_alone() {
        let data: Vec<u8> = (0..2 * CHUNK).map(|i| (i % 253) as u8).collect();
        let copy = copy_releasing(&data);
        let mut written = Vec::new();
        write_releasing(&mut written, &data).unwrap();
        // A release on plain heap memory would have zeroed it.
        assert_eq!(copy, data);
        assert_eq!(written, data);
        assert!(data.iter().any(|&b| b != 0));
    }
}
