//! Streaming `.npz` writer and lazy, memory-mapped `.npz` reader.
use super::mapped::{file_range, FileMap};
use super::npy::{self, Header};
use super::sink::Sink;
use super::zip_writer::ZipOut;
use super::{key, parse_key, Tensor, TensorInfo, WeightReader};
use crate::output::AtomicFile;
use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use zip::{CompressionMethod, ZipArchive};

/// Writes an `.npz` one tensor at a time; the file appears at its path on `finish`.
pub struct NpzWriter {
    zip: ZipOut,
    out: Option<AtomicFile>,
    names: std::collections::HashSet<String>,
}

impl NpzWriter {
    pub fn create(path: &Path) -> Result<NpzWriter> {
        let mut out = AtomicFile::create(path)?;
        let file = out.file().try_clone()?;
        Ok(NpzWriter {
            zip: ZipOut::new(file),
            out: Some(out),
            names: Default::default(),
        })
    }

    /// Adds a tensor whose bytes are in memory or in a mapped input file. The bytes of a mapped
    /// file are placed at their offset within a page in that file.
    pub fn add(&mut self, node: &str, param: &str, tensor: &Tensor) -> Result<()> {
        let source = file_range(&tensor.data).map(|(_, offset)| offset);
        self.start(node, param, &tensor.info, source)?;
        self.zip.write_mapped(&tensor.data)?;
        Ok(())
    }

    /// Adds a tensor by copying exactly `info.nbytes()` bytes (C order, little-endian) from
    /// `data`, without holding them in memory.
    pub fn add_stream(
        &mut self,
        node: &str,
        param: &str,
        info: &TensorInfo,
        data: &mut dyn Read,
    ) -> Result<()> {
        self.start(node, param, info, None)?;
        let copied = std::io::copy(&mut data.take(info.nbytes() as u64), &mut self.zip)?;
        if copied != info.nbytes() as u64 {
            bail!(
                "weight '{param}' of node '{node}': expected {} bytes, the source gave {copied}",
                info.nbytes()
            );
        }
        Ok(())
    }

    /// Starts the entry of a tensor and writes its `.npy` header; the data after it lands at
    /// `source`'s offset within a page when given.
    fn start(
        &mut self,
        node: &str,
        param: &str,
        info: &TensorInfo,
        source: Option<u64>,
    ) -> Result<()> {
        let name = key(node, param, info.dtype) + ".npy";
        if !self.names.insert(name.clone()) {
            bail!("weight '{param}' of node '{node}' is written twice");
        }
        let header = npy::header_bytes(npy::descr(info.dtype), &info.shape);
        let total = header.len() as u64 + info.nbytes() as u64;
        let page_offset = source.map(|at| at.wrapping_sub(header.len() as u64));
        self.zip
            .start_placed(&name, total, page_offset)
            .with_context(|| format!("cannot add weight '{param}' of node '{node}'"))?;
        self.zip.write_all(&header)?;
        Ok(())
    }

    /// Completes the archive and moves it into place.
    pub fn finish(self) -> Result<()> {
        self.close()?.commit()
    }

    /// Completes the archive without moving it into place (see [`AtomicFile::commit`]), so
    /// several outputs can appear together.
    pub fn close(mut self) -> Result<AtomicFile> {
        self.zip
            .finish()
            .context("cannot complete the weights archive")?;
        Ok(self.out.take().expect("close runs once"))
    }
}

struct Entry {
    param: (String, String),
    info: TensorInfo,
    fortran: bool,
    big_endian: bool,
    /// Offset and length of the raw entry data (header included) within the file.
    start: usize,
    len: usize,
    index: usize,
    stored: bool,
}

/// A lazily read `.npz`: opening parses only the zip directory and the `.npy` headers.
pub struct NpzReader {
    path: PathBuf,
    map: Bytes,
    entries: Vec<Entry>,
    by_key: HashMap<(String, String), usize>,
}

impl NpzReader {
    pub fn open(path: &Path) -> Result<NpzReader> {
        let map = FileMap::open(path)
            .context("cannot read the weights file")?
            .bytes();
        let mut archive = ZipArchive::new(std::io::Cursor::new(&map[..]))
            .with_context(|| format!("{} is not a valid .npz (zip) archive", path.display()))?;
        super::zip_read::unique_names(&map, archive.central_directory_start(), path)?;
        let mut entries = Vec::new();
        let mut by_key = HashMap::new();
        for index in 0..archive.len() {
            let f = archive.by_index_raw(index)?;
            let name = f.name().to_string();
            let Some(stem) = name.strip_suffix(".npy") else {
                continue;
            };
            let (node, param, marked) =
                parse_key(stem).with_context(|| format!("{}: entry '{name}'", path.display()))?;
            let stored = f.compression() == CompressionMethod::Stored;
            if !stored {
                super::zip_read::check_declared(&f, u64::MAX, path)?;
            }
            let start = f.data_start() as usize;
            let len = f.compressed_size() as usize;
            drop(f);
            let header: Header = if stored {
                let body = start
                    .checked_add(len)
                    .and_then(|end| map.get(start..end))
                    .with_context(|| {
                        format!(
                            "{}: entry '{name}' claims {len} bytes at offset {start}, past the \
                             end of the file ({} bytes)",
                            path.display(),
                            map.len()
                        )
                    })?;
                npy::parse_header(body)
            } else {
                let mut head = vec![0u8; 1 << 16];
                let mut rd = archive.by_index(index)?;
                let n = read_up_to(&mut rd, &mut head)?;
                npy::parse_header(&head[..n])
            }
            .with_context(|| format!("{}: entry '{name}'", path.display()))?;
            let (mut dtype, big_endian) = npy::dtype_of(&header.descr)
                .with_context(|| format!("{}: entry '{name}'", path.display()))?;
            if let Some(m) = marked {
                let (carrier, _) = npy::dtype_of(npy::descr(m))?;
                if dtype != carrier {
                    bail!(
                        "{}: entry '{name}' is marked {m} but holds {dtype} (expected {carrier})",
                        path.display()
                    );
                }
                dtype = m;
            }
            let info = TensorInfo::checked(dtype, header.shape.clone())
                .with_context(|| format!("{}: entry '{name}'", path.display()))?;
            if stored && header.data_offset.saturating_add(info.nbytes()) > len {
                bail!("{}: entry '{name}' is truncated", path.display());
            }
            if by_key
                .insert((node.clone(), param.clone()), entries.len())
                .is_some()
            {
                bail!(
                    "{}: weight '{param}' of node '{node}' is stored twice",
                    path.display()
                );
            }
            entries.push(Entry {
                param: (node, param),
                info,
                fortran: header.fortran_order,
                big_endian,
                start: start + if stored { header.data_offset } else { 0 },
                len,
                index,
                stored,
            });
        }
        Ok(NpzReader {
            path: path.to_path_buf(),
            map,
            entries,
            by_key,
        })
    }

    fn entry(&self, node: &str, param: &str) -> Option<&Entry> {
        self.by_key
            .get(&(node.to_string(), param.to_string()))
            .map(|&i| &self.entries[i])
    }
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let k = r.read(&mut buf[n..])?;
        if k == 0 {
            break;
        }
        n += k;
    }
    Ok(n)
}

impl WeightReader for NpzReader {
    fn info(&self, node: &str, param: &str) -> Option<TensorInfo> {
        self.entry(node, param).map(|e| e.info.clone())
    }

    fn read(&self, node: &str, param: &str) -> Result<Tensor> {
        let e = self.entry(node, param).ok_or_else(|| {
            anyhow!(
                "{} has no weight '{param}' for node '{node}'",
                self.path.display()
            )
        })?;
        let nbytes = e.info.nbytes();
        let raw = if e.stored {
            self.map.slice(e.start..e.start + nbytes)
        } else {
            let mut archive = ZipArchive::new(std::io::Cursor::new(&self.map[..]))?;
            // At most the size the entry declares (checked against deflate's limit on open):
            // an entry that inflates further is refused, not read to its end.
            let all =
                super::zip_read::read_entry(&mut archive.by_index(e.index)?, u64::MAX, &self.path)?;
            let h = npy::parse_header(&all)?;
            let end = h.data_offset.saturating_add(nbytes);
            if all.len() < end {
                bail!(
                    "{}: weight '{param}' of node '{node}' is truncated ({} of {} bytes)",
                    self.path.display(),
                    all.len().saturating_sub(h.data_offset),
                    nbytes
                );
            }
            Bytes::from(all).slice(h.data_offset..end)
        };
        let _ = e.len;
        let data = normalize(raw, &e.info, e.fortran, e.big_endian);
        Tensor::new(e.info.dtype, e.info.shape.clone(), data)
    }

    fn keys(&self) -> Vec<(String, String)> {
        self.entries.iter().map(|e| e.param.clone()).collect()
    }
}

/// Converts big-endian or Fortran-order data to C-order little-endian (copying only then).
pub(crate) fn normalize(raw: Bytes, info: &TensorInfo, fortran: bool, big_endian: bool) -> Bytes {
    if !fortran && !big_endian {
        return raw;
    }
    let size = info.dtype.size();
    let mut data = raw.to_vec();
    if big_endian {
        for c in data.chunks_exact_mut(size) {
            c.reverse();
        }
    }
    if fortran && info.shape.len() > 1 {
        let rank = info.shape.len();
        let mut out = vec![0u8; data.len()];
        let mut idx = vec![0usize; rank];
        // Fortran strides (in elements).
        let mut fstride = vec![1usize; rank];
        for a in 1..rank {
            fstride[a] = fstride[a - 1] * info.shape[a - 1];
        }
        for c_pos in 0..info.numel() {
            let f_pos: usize = idx.iter().zip(&fstride).map(|(i, s)| i * s).sum();
            out[c_pos * size..(c_pos + 1) * size]
                .copy_from_slice(&data[f_pos * size..(f_pos + 1) * size]);
            for a in (0..rank).rev() {
                idx[a] += 1;
                if idx[a] < info.shape[a] {
                    break;
                }
                idx[a] = 0;
            }
        }
        data = out;
    }
    Bytes::from(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::DType;

    #[test]
    fn writes_and_reads_back_every_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.npz");
        let mut w = NpzWriter::create(&path).unwrap();
        let mut expected = vec![];
        for (i, dtype) in DType::ALL.into_iter().enumerate() {
            let shape = vec![2, 3];
            let bytes: Vec<u8> = (0..6 * dtype.size())
                .map(|b| (b * 7 + i) as u8 % 2)
                .collect();
            let t = Tensor::new(dtype, shape, bytes).unwrap();
            let node = format!("layer/{i}");
            w.add(&node, "weights", &t).unwrap();
            expected.push((node, t));
        }
        assert!(!path.exists(), "nothing is visible before finish");
        w.finish().unwrap();
        let r = NpzReader::open(&path).unwrap();
        assert_eq!(r.keys().len(), expected.len());
        for (node, t) in expected {
            let got = r.read(&node, "weights").unwrap();
            assert_eq!(got.info, t.info);
            assert_eq!(got.data, t.data);
        }
    }

    #[test]
    fn dropped_writer_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.npz");
        {
            let mut w = NpzWriter::create(&path).unwrap();
            w.add("a", "b", &Tensor::from_f32(vec![1], &[1.0]).unwrap())
                .unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn short_stream_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = NpzWriter::create(&dir.path().join("w.npz")).unwrap();
        let info = TensorInfo {
            dtype: DType::F32,
            shape: vec![4],
        };
        let err = w
            .add_stream("n", "w", &info, &mut &[0u8; 8][..])
            .unwrap_err();
        assert!(err.to_string().contains("expected 16 bytes"), "{err}");
    }

    #[test]
    fn fortran_and_big_endian_are_normalized() {
        // 2x3 int16 matrix [[1,2,3],[4,5,6]] stored Fortran-order, big-endian.
        let f_order = [1i16, 4, 2, 5, 3, 6];
        let raw: Vec<u8> = f_order.iter().flat_map(|v| v.to_be_bytes()).collect();
        let info = TensorInfo {
            dtype: DType::I16,
            shape: vec![2, 3],
        };
        let out = normalize(Bytes::from(raw), &info, true, true);
        let vals: Vec<i16> = out
            .chunks(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        assert_eq!(vals, vec![1, 2, 3, 4, 5, 6]);
    }

    /// A central directory that claims an entry runs past the end of the file (a panic on a
    /// slice before) is refused, naming the entry, the offset and the file's size.
    #[test]
    fn entries_claiming_bytes_past_the_end_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.npz");
        let mut w = NpzWriter::create(&path).unwrap();
        w.add("n", "w", &Tensor::from_f32(vec![4], &[1.0; 4]).unwrap())
            .unwrap();
        w.finish().unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let cd = bytes
            .windows(4)
            .position(|w| w == b"PK\x01\x02")
            .expect("a central directory entry");
        for field in [20, 24] {
            bytes[cd + field..cd + field + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        }
        std::fs::write(&path, &bytes).unwrap();
        let e = format!("{:#}", NpzReader::open(&path).err().expect("refused"));
        assert!(e.contains("past the end of the file"), "{e}");
    }
}
