//! A streaming writer of zip archives whose entries are stored uncompressed, as `.npz` weights
//! and PyTorch's `torch.save` archives are. Each entry's data starts at a multiple of 64 bytes,
//! or at a chosen offset within a page (padded by an extra field in its local header); ZIP64
//! records are written where sizes, offsets or the entry count pass the classic limits, so
//! archives past 4 GB work. Entry data is streamed: its CRC-32 is computed as it is written and
//! patched into the local header afterwards, and bytes of a mapped input file are copied by the
//! kernel ([`Sink::write_mapped`]). Field layout per PKWARE's APPNOTE.TXT (6.3).
use super::sink::{copy_to_file, Sink};
use std::fs::File;
use std::io::{self, Write};

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
const ZIP64_END_OF_CENTRAL_DIRECTORY: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EXTRA: u16 = 0x0001;
/// The id of the extra field that pads a local header to the data alignment; readers skip
/// extra fields they do not know.
const PADDING_EXTRA: u16 = 0xa11e;
/// Version needed to extract: 2.0 (stored), 4.5 (ZIP64).
const VERSION: u16 = 20;
const VERSION_ZIP64: u16 = 45;
/// Version made by: Unix (3) in the high byte, so the external attributes are a file mode.
const MADE_BY: u16 = (3 << 8) | VERSION_ZIP64;
/// Flag bit 11: names are UTF-8.
const UTF8_NAMES: u16 = 1 << 11;
/// 1980-01-01 00:00 in MS-DOS date and time (a fixed date keeps archives reproducible).
const DOS_DATE: u16 = (1 << 5) | 1;
const DOS_TIME: u16 = 0;
/// Data of every entry starts at a multiple of this, unless placed within a page.
const ALIGN: u64 = 64;
const PAGE: u64 = 4096;
const U32_LIMIT: u64 = 0xffff_ffff;

struct Entry {
    name: String,
    offset: u64,
    size: u64,
    crc: u32,
}

/// The entry being written.
struct Open {
    entry: Entry,
    written: u64,
    hasher: crc32fast::Hasher,
}

/// A zip archive being written to a file, one stored entry at a time.
pub struct ZipOut {
    file: File,
    /// Sizes and offsets from this on are written as ZIP64 (the classic fields' limit, except
    /// in tests).
    zip64_from: u64,
    position: u64,
    done: Vec<Entry>,
    open: Option<Open>,
}

impl ZipOut {
    /// Starts an archive at the beginning of `file` (its current position must be 0).
    pub fn new(file: File) -> ZipOut {
        ZipOut {
            file,
            zip64_from: U32_LIMIT,
            position: 0,
            done: Vec::new(),
            open: None,
        }
    }

    /// Starts entry `name` of exactly `size` bytes, ending the previous one; its data starts at
    /// a multiple of 64 bytes.
    pub fn start(&mut self, name: &str, size: u64) -> io::Result<()> {
        self.start_placed(name, size, None)
    }

    /// [`start`](Self::start), but with the data starting at `page_offset` within a 4 KiB page
    /// when given: bytes copied from an input file at the same offset within its pages are
    /// copied by the kernel page for page (a quarter faster than across page boundaries).
    pub fn start_placed(
        &mut self,
        name: &str,
        size: u64,
        page_offset: Option<u64>,
    ) -> io::Result<()> {
        self.end_entry()?;
        let offset = self.position;
        let zip64 = size >= self.zip64_from;
        let mut extra = Vec::new();
        if zip64 {
            extra.extend(ZIP64_EXTRA.to_le_bytes());
            extra.extend(16u16.to_le_bytes());
            extra.extend(size.to_le_bytes());
            extra.extend(size.to_le_bytes());
        }
        let unpadded = offset + 30 + name.len() as u64 + extra.len() as u64;
        let (modulus, residue) = match page_offset {
            Some(at) => (PAGE, at % PAGE),
            None => (ALIGN, 0),
        };
        let mut pad = (residue + modulus - unpadded % modulus) % modulus;
        if pad > 0 && pad < 4 {
            pad += modulus; // an extra field needs 4 bytes of header
        }
        if pad > 0 {
            extra.extend(PADDING_EXTRA.to_le_bytes());
            extra.extend(((pad - 4) as u16).to_le_bytes());
            extra.resize(extra.len() + pad as usize - 4, 0);
        }
        let small_size = if zip64 { U32_LIMIT as u32 } else { size as u32 };
        let mut h = Vec::with_capacity(30 + name.len() + extra.len());
        h.extend(LOCAL_HEADER.to_le_bytes());
        h.extend((if zip64 { VERSION_ZIP64 } else { VERSION }).to_le_bytes());
        h.extend(UTF8_NAMES.to_le_bytes());
        h.extend(0u16.to_le_bytes()); // stored
        h.extend(DOS_TIME.to_le_bytes());
        h.extend(DOS_DATE.to_le_bytes());
        h.extend(0u32.to_le_bytes()); // CRC-32, patched when the entry ends
        h.extend(small_size.to_le_bytes());
        h.extend(small_size.to_le_bytes());
        h.extend(
            u16::try_from(name.len())
                .map_err(|_| too_long(name))?
                .to_le_bytes(),
        );
        h.extend((extra.len() as u16).to_le_bytes());
        h.extend(name.as_bytes());
        h.extend(&extra);
        self.put(&h)?;
        self.open = Some(Open {
            entry: Entry {
                name: name.to_string(),
                offset,
                size,
                crc: 0,
            },
            written: 0,
            hasher: crc32fast::Hasher::new(),
        });
        Ok(())
    }

    /// Adds a whole entry.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> io::Result<()> {
        self.start(name, bytes.len() as u64)?;
        self.write_mapped(bytes)
    }

    /// Ends the last entry, writes the central directory and returns the file.
    pub fn finish(mut self) -> io::Result<File> {
        self.end_entry()?;
        let start = self.position;
        let mut cd = Vec::new();
        for e in &self.done {
            let mut zip64 = Vec::new();
            let size32 = if e.size >= self.zip64_from {
                zip64.extend(e.size.to_le_bytes()); // uncompressed
                zip64.extend(e.size.to_le_bytes()); // compressed
                U32_LIMIT as u32
            } else {
                e.size as u32
            };
            let offset32 = if e.offset >= self.zip64_from {
                zip64.extend(e.offset.to_le_bytes());
                U32_LIMIT as u32
            } else {
                e.offset as u32
            };
            let mut extra = Vec::new();
            if !zip64.is_empty() {
                extra.extend(ZIP64_EXTRA.to_le_bytes());
                extra.extend((zip64.len() as u16).to_le_bytes());
                extra.extend(zip64);
            }
            let needed = if extra.is_empty() {
                VERSION
            } else {
                VERSION_ZIP64
            };
            cd.extend(CENTRAL_HEADER.to_le_bytes());
            cd.extend(MADE_BY.to_le_bytes());
            cd.extend(needed.to_le_bytes());
            cd.extend(UTF8_NAMES.to_le_bytes());
            cd.extend(0u16.to_le_bytes()); // stored
            cd.extend(DOS_TIME.to_le_bytes());
            cd.extend(DOS_DATE.to_le_bytes());
            cd.extend(e.crc.to_le_bytes());
            cd.extend(size32.to_le_bytes());
            cd.extend(size32.to_le_bytes());
            cd.extend((e.name.len() as u16).to_le_bytes());
            cd.extend((extra.len() as u16).to_le_bytes());
            cd.extend(0u16.to_le_bytes()); // comment length
            cd.extend(0u16.to_le_bytes()); // disk number
            cd.extend(0u16.to_le_bytes()); // internal attributes
            cd.extend((0o100644u32 << 16).to_le_bytes()); // a regular file, rw-r--r--
            cd.extend(offset32.to_le_bytes());
            cd.extend(e.name.as_bytes());
            cd.extend(extra);
        }
        let count = self.done.len() as u64;
        let size = cd.len() as u64;
        self.put(&cd)?;
        let mut end = Vec::new();
        if count >= 0xffff || size >= self.zip64_from || start >= self.zip64_from {
            let record = self.position;
            end.extend(ZIP64_END_OF_CENTRAL_DIRECTORY.to_le_bytes());
            end.extend(44u64.to_le_bytes()); // size of the rest of this record
            end.extend(MADE_BY.to_le_bytes());
            end.extend(VERSION_ZIP64.to_le_bytes());
            end.extend(0u32.to_le_bytes()); // this disk
            end.extend(0u32.to_le_bytes()); // the central directory's disk
            end.extend(count.to_le_bytes());
            end.extend(count.to_le_bytes());
            end.extend(size.to_le_bytes());
            end.extend(start.to_le_bytes());
            end.extend(ZIP64_LOCATOR.to_le_bytes());
            end.extend(0u32.to_le_bytes()); // the ZIP64 record's disk
            end.extend(record.to_le_bytes());
            end.extend(1u32.to_le_bytes()); // disks
        }
        end.extend(END_OF_CENTRAL_DIRECTORY.to_le_bytes());
        end.extend(0u16.to_le_bytes());
        end.extend(0u16.to_le_bytes());
        let classic = |v: u64, max: u64| {
            if v >= self.zip64_from.min(max) {
                max
            } else {
                v
            }
        };
        end.extend((classic(count, 0xffff) as u16).to_le_bytes());
        end.extend((classic(count, 0xffff) as u16).to_le_bytes());
        end.extend((classic(size, U32_LIMIT) as u32).to_le_bytes());
        end.extend((classic(start, U32_LIMIT) as u32).to_le_bytes());
        end.extend(0u16.to_le_bytes()); // comment length
        self.put(&end)?;
        Ok(self.file)
    }

    /// Checks the open entry's size and patches its CRC into the local header.
    fn end_entry(&mut self) -> io::Result<()> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let mut entry = open.entry;
        if open.written != entry.size {
            return Err(io::Error::other(format!(
                "zip entry '{}': {} bytes written, {} announced",
                entry.name, open.written, entry.size
            )));
        }
        entry.crc = open.hasher.finalize();
        write_all_at(&self.file, &entry.crc.to_le_bytes(), entry.offset + 14)?;
        self.done.push(entry);
        Ok(())
    }

    /// Writes archive structure (not entry data) at the current position.
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        (&self.file).write_all(bytes)?;
        self.position += bytes.len() as u64;
        Ok(())
    }

    /// Accounts for `n` more bytes of the open entry.
    fn grow(&mut self, n: u64) -> io::Result<&mut Open> {
        let open = self
            .open
            .as_mut()
            .ok_or_else(|| io::Error::other("zip data written outside an entry"))?;
        if open.written + n > open.entry.size {
            return Err(io::Error::other(format!(
                "zip entry '{}': more than the {} bytes announced",
                open.entry.name, open.entry.size
            )));
        }
        open.written += n;
        Ok(open)
    }
}

impl Write for ZipOut {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.grow(buf.len() as u64)?.hasher.update(buf);
        (&self.file).write_all(buf)?;
        self.position += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink for ZipOut {
    fn write_mapped(&mut self, data: &[u8]) -> io::Result<()> {
        self.grow(data.len() as u64)?;
        let hasher = &mut self.open.as_mut().expect("grow checked it").hasher;
        copy_to_file(
            &self.file,
            data,
            Some(&mut |chunk: &[u8]| hasher.update(chunk)),
        )?;
        self.position += data.len() as u64;
        Ok(())
    }
}

fn too_long(name: &str) -> io::Error {
    io::Error::other(format!(
        "zip entry name of {} bytes is too long",
        name.len()
    ))
}

#[cfg(unix)]
fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(windows)]
fn write_all_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < bytes.len() {
        done +=
            std::os::windows::fs::FileExt::seek_write(file, &bytes[done..], offset + done as u64)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::mapped::FileMap;
    use std::io::Read;

    #[test]
    fn entries_read_back_aligned_with_their_crcs() {
        write_and_read_back(U32_LIMIT);
    }

    #[test]
    fn zip64_records_read_back() {
        // Every size and offset past 1 byte written as ZIP64, as past 4 GB.
        write_and_read_back(1);
    }

    fn write_and_read_back(zip64_from: u64) {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 253) as u8).collect();
        std::fs::write(&src, &big).unwrap();
        let map = FileMap::open(&src).unwrap();
        let mapped = map.bytes();
        let path = dir.path().join("a.zip");
        let mut z = ZipOut::new(File::create(&path).unwrap());
        z.zip64_from = zip64_from;
        z.add("x", b"hello").unwrap();
        z.start("dir/ünï.bin", 1_000_000 + 5).unwrap();
        z.write_mapped(&mapped[11..1_000_011]).unwrap();
        z.write_all(b"tail!").unwrap();
        z.add("empty", b"").unwrap();
        z.start_placed("placed", 3, Some(4096 * 3 + 1234)).unwrap();
        z.write_all(b"abc").unwrap();
        z.finish().unwrap();

        let mut archive = ::zip::ZipArchive::new(File::open(&path).unwrap()).unwrap();
        assert_eq!(archive.len(), 4);
        let placed = archive.by_name("placed").unwrap().data_start();
        assert_eq!(placed % PAGE, 1234);
        let mut expected = big[11..1_000_011].to_vec();
        expected.extend_from_slice(b"tail!");
        for (name, want) in [
            ("x", b"hello".to_vec()),
            ("dir/ünï.bin", expected),
            ("empty", vec![]),
        ] {
            let mut f = archive.by_name(name).unwrap();
            assert_eq!(f.data_start() % ALIGN, 0, "{name} is aligned");
            let mut got = Vec::new();
            f.read_to_end(&mut got).unwrap(); // checks the CRC at the end
            assert!(got == want, "{name}");
        }
    }

    #[test]
    fn a_size_other_than_announced_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut z = ZipOut::new(File::create(dir.path().join("a.zip")).unwrap());
        z.start("a", 3).unwrap();
        assert!(z.write_all(b"four").is_err());
        let mut z = ZipOut::new(File::create(dir.path().join("b.zip")).unwrap());
        z.start("a", 3).unwrap();
        z.write_all(b"ab").unwrap();
        assert!(z.finish().is_err());
    }
}
