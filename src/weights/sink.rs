//! Where tensor bytes are written. A [`Sink`] is a `Write` that may also copy bytes of a mapped
//! input file without passing them through this process: a file destination asks the kernel to
//! copy the source file's pages (`copy_file_range`, as `cp` does), which is both the fastest
//! way and the one whose speed does not swing with the machine's load; writing from a map
//! copies out of user pages, which on a busy machine took up to ten times as long.
use super::mapped::{file_range, read_exact_at, write_releasing, CHUNK};
use std::fs::File;
use std::io::{self, BufWriter, Write};

/// A destination for tensor bytes.
pub trait Sink: Write {
    /// Appends `data`; where it lies in a live file map, the map's pages are released once
    /// written (see [`write_releasing`]), and a file destination copies them in the kernel.
    fn write_mapped(&mut self, data: &[u8]) -> io::Result<()> {
        write_releasing(self, data)
    }
}

impl Sink for Vec<u8> {}

impl Sink for BufWriter<&File> {
    fn write_mapped(&mut self, data: &[u8]) -> io::Result<()> {
        self.flush()?;
        copy_to_file(self.get_ref(), data, None)
    }
}

/// Something shown the bytes copied, chunk by chunk (a checksum).
pub type Watcher<'a> = &'a mut (dyn FnMut(&[u8]) + Send);

/// Appends `data` to `dest` at its current position, calling `seen` (if given) with its bytes
/// chunk by chunk, in order. Data of a live map is copied in the kernel from the mapped file,
/// and shown to `seen` through positioned reads of that file into a small buffer (on another
/// thread for large data), so the map's pages are never touched: touching and releasing them
/// from two threads costs a TLB shootdown per release. Where the kernel cannot copy between the
/// two files, and for any other data, it is written from memory.
pub fn copy_to_file(dest: &File, data: &[u8], seen: Option<Watcher<'_>>) -> io::Result<()> {
    let mut dest = dest;
    let Some((src, offset)) = file_range(data) else {
        // Each chunk written while it is still in the cache from `seen`.
        let mut seen = seen;
        for chunk in data.chunks(CHUNK) {
            if let Some(seen) = seen.as_mut() {
                seen(chunk);
            }
            dest.write_all(chunk)?;
        }
        return Ok(());
    };
    let show = |seen: Option<Watcher<'_>>| -> io::Result<()> {
        let Some(seen) = seen else { return Ok(()) };
        let mut buf = vec![0u8; CHUNK.min(data.len())];
        let mut at = 0;
        while at < data.len() {
            let n = buf.len().min(data.len() - at);
            read_exact_at(&src, &mut buf[..n], offset + at as u64)?;
            seen(&buf[..n]);
            at += n;
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let shown = if data.len() >= PARALLEL_FROM {
            Some(scope.spawn(|| show(seen)))
        } else {
            show(seen)?;
            None
        };
        if !kernel_copy(&src, offset, dest, data.len())? {
            write_releasing(&mut dest, data)?;
        }
        match shown {
            Some(thread) => thread.join().expect("the checksum thread does not panic"),
            None => Ok(()),
        }
    })
}

/// Data from this size on is checksummed on a thread of its own while the kernel copies it.
const PARALLEL_FROM: usize = 1 << 20;

/// Copies `len` bytes of `src` from `offset` to `dest`'s current position in the kernel.
/// Returns false, having copied nothing, when the kernel cannot copy between these files.
#[cfg(target_os = "linux")]
fn kernel_copy(src: &File, offset: u64, dest: &File, len: usize) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    let mut off = offset as libc::loff_t;
    let mut left = len;
    while left > 0 {
        // SAFETY: both descriptors are open for the call's duration; `off` is a valid pointer
        // and a null output offset means dest's own file position, which the kernel advances.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off,
                dest.as_raw_fd(),
                std::ptr::null_mut(),
                left,
                0,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            let unsupported = matches!(
                err.raw_os_error(),
                Some(libc::EXDEV | libc::ENOSYS | libc::EOPNOTSUPP | libc::EINVAL)
            );
            if unsupported && left == len {
                return Ok(false);
            }
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the input file ended early",
            ));
        }
        left -= n as usize;
    }
    Ok(true)
}

#[cfg(not(target_os = "linux"))]
fn kernel_copy(_src: &File, _offset: u64, _dest: &File, _len: usize) -> io::Result<bool> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::mapped::FileMap;
    use std::io::{Read, Seek};

    #[test]
    fn mapped_and_plain_bytes_land_after_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let data: Vec<u8> = (0..(PARALLEL_FROM + 2 * CHUNK + 999))
            .map(|i| (i * 31 % 255) as u8)
            .collect();
        std::fs::write(&src, &data).unwrap();
        let map = FileMap::open(&src).unwrap();
        let all = map.bytes();
        let out = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.path().join("out"))
            .unwrap();
        let mut seen = Vec::new();
        {
            let mut w = BufWriter::new(&out);
            w.write_all(b"head").unwrap();
            w.write_mapped(&all[7..CHUNK + 100]).unwrap();
            w.write_all(b"mid").unwrap();
            w.write_mapped(&data[3..50]).unwrap();
            w.flush().unwrap();
            copy_to_file(
                &out,
                &all[CHUNK..],
                Some(&mut |c: &[u8]| seen.extend_from_slice(c)),
            )
            .unwrap();
            // Large enough for the checksum thread.
            let mut big_seen = Vec::new();
            copy_to_file(
                &out,
                &all[..],
                Some(&mut |c: &[u8]| big_seen.extend_from_slice(c)),
            )
            .unwrap();
            assert!(big_seen == data);
        }
        let mut expected = b"head".to_vec();
        expected.extend_from_slice(&data[7..CHUNK + 100]);
        expected.extend_from_slice(b"mid");
        expected.extend_from_slice(&data[3..50]);
        expected.extend_from_slice(&data[CHUNK..]);
        expected.extend_from_slice(&data);
        let mut got = Vec::new();
        let mut f = &out;
        f.rewind().unwrap();
        f.read_to_end(&mut got).unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected);
        assert!(seen == data[CHUNK..]);
    }
}
