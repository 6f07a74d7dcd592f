//! Hostile `.keras` archives and outputs (issue 15, items 7 and 10): zip bombs (an entry
//! inflating past what it declares), duplicate entries, SIGINT while a compressed weights file is
//! inflated into TMPDIR, and outputs that are no regular file (a FIFO, a link to /dev/null). The
//! archives are written here by hand, small; the bombs inflate to gigabytes.
#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("mmdnn")
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// A zip written by hand: (name, method (0 stored, 8 deflated), declared size, data).
fn zip(entries: &[(&str, u16, u64, &[u8])]) -> Vec<u8> {
    let (mut out, mut dir) = (vec![], vec![]);
    for (name, method, size, data) in entries {
        let at = out.len() as u32;
        let fields = |sig: &[u8], central: bool| {
            let mut h = sig.to_vec();
            if central {
                h.extend(20u16.to_le_bytes()); // made by
            }
            h.extend(20u16.to_le_bytes()); // needed
            h.extend(0u16.to_le_bytes()); // flags
            h.extend(method.to_le_bytes());
            h.extend([0u8; 4]); // time, date
                                // The CRC of stored entries (read to their end); none for the bombs, whose reads
                                // stop before their end.
            let crc = if *method == 0 {
                crc32fast::hash(data)
            } else {
                0
            };
            h.extend(crc.to_le_bytes());
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((*size as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes()); // extra
            if central {
                h.extend([0u8; 6]); // comment length, disk, internal attributes
                h.extend(0u32.to_le_bytes()); // external attributes
                h.extend(at.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(fields(b"PK\x03\x04", false));
        out.extend(*data);
        dir.extend(fields(b"PK\x01\x02", true));
    }
    let start = out.len() as u32;
    out.extend(&dir);
    out.extend(b"PK\x05\x06");
    out.extend([0u8; 4]);
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((entries.len() as u16).to_le_bytes());
    out.extend((dir.len() as u32).to_le_bytes());
    out.extend(start.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A raw deflate stream of `mb` MiB of zeros, built from one compressed MiB repeated (each
/// piece byte-aligned and not final, so the copies continue one stream).
fn zeros_deflated(mb: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let mut c = Compress::new(Compression::best(), false);
    let mut piece = Vec::with_capacity(1 << 20);
    c.compress_vec(&vec![0u8; 1 << 20], &mut piece, FlushCompress::Sync)
        .unwrap();
    let mut end = Vec::with_capacity(64);
    c.compress_vec(&[], &mut end, FlushCompress::Finish)
        .unwrap();
    let mut out = Vec::with_capacity(piece.len() * mb + end.len());
    for _ in 0..mb {
        out.extend(&piece);
    }
    out.extend(end);
    out
}

/// Runs mmdnn with `args`, TMPDIR=`tmp` and at most 1 GiB of address space; returns (exit
/// code, stderr, seconds).
fn limited(args: &[&std::ffi::OsStr], tmp: &Path) -> (Option<i32>, String, f64) {
    use std::os::unix::process::CommandExt;
    let t = Instant::now();
    let mut cmd = Command::new(bin());
    cmd.args(args).env("TMPDIR", tmp);
    // SAFETY: setrlimit is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1 << 30,
                rlim_max: 1 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), err, t.elapsed().as_secs_f64())
}

fn convert_keras(model: &Path, dir: &Path) -> Vec<std::ffi::OsString> {
    vec![
        "convert".into(),
        "-sf".into(),
        "keras".into(),
        "-iw".into(),
        model.into(),
        "-df".into(),
        "onnx".into(),
        "-om".into(),
        dir.join("out.onnx").into(),
    ]
}

fn os(v: &[std::ffi::OsString]) -> Vec<&std::ffi::OsStr> {
    v.iter().map(|s| s.as_os_str()).collect()
}

/// A config.json declaring 2 bytes that inflates to 2 GiB, and a weights file declaring 1 MiB
/// that inflates to 2 GiB: refused at once, within 1 GiB of address space, nothing left in
/// TMPDIR.
#[test]
fn keras_zip_bombs_are_refused_quickly_in_bounded_memory() {
    let d = tempfile::tempdir().unwrap();
    let tmp = d.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let bomb = zeros_deflated(2048);
    let cases = [
        (
            "config.keras",
            zip(&[("config.json", 8, 2, &bomb)]),
            "config.json",
        ),
        (
            "weights.keras",
            zip(&[
                ("config.json", 0, 2, b"{}"),
                ("model.weights.h5", 8, 1 << 20, &bomb),
            ]),
            "model.weights.h5",
        ),
    ];
    for (name, bytes, entry) in cases {
        let path = d.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (code, err, secs) = limited(&os(&convert_keras(&path, d.path())), &tmp);
        eprintln!("{name}: exit {code:?} in {secs:.2} s: {err}");
        assert_eq!(code, Some(1), "{err}");
        assert!(
            err.contains(entry) && err.contains("inflates to more than"),
            "{err}"
        );
        assert!(secs < 10.0, "{name} took {secs} s");
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
        assert!(!d.path().join("out.onnx").exists());
    }
}

/// Two config.json entries: readers disagree on which counts (Keras takes the last), so the
/// archive is refused, naming the entry.
#[test]
fn a_keras_zip_with_a_duplicate_entry_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("dup.keras");
    std::fs::write(
        &path,
        zip(&[("config.json", 0, 2, b"{}"), ("config.json", 0, 2, b"[]")]),
    )
    .unwrap();
    let (code, err, _) = limited(&os(&convert_keras(&path, d.path())), d.path());
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("dup.keras") && err.contains("two entries named 'config.json'"),
        "{err}"
    );
}

/// SIGINT while a compressed model.weights.h5 is being inflated into TMPDIR (into a file of
/// mode 0600): exit 130 and the temporary directory is gone.
#[test]
fn sigint_while_inflating_keras_weights_removes_the_temporary() {
    let d = tempfile::tempdir().unwrap();
    let tmp = d.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mb = 2048;
    let weights = zeros_deflated(mb);
    let path = d.path().join("big.keras");
    let entries: [(&str, u16, u64, &[u8]); 2] = [
        ("config.json", 0, 2, b"{}"),
        ("model.weights.h5", 8, (mb as u64) << 20, &weights),
    ];
    std::fs::write(&path, zip(&entries)).unwrap();
    let args = convert_keras(&path, d.path());
    let mut child = Command::new(bin())
        .args(&args)
        .env("TMPDIR", &tmp)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the extracted file is there and growing; only its owner may read it.
    let t = Instant::now();
    let (grown, mode) = loop {
        let files: Vec<std::fs::Metadata> = std::fs::read_dir(&tmp)
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_dir(e.path()).ok())
            .flatten()
            .flatten()
            .filter_map(|f| f.metadata().ok())
            .collect();
        let size: u64 = files.iter().map(|m| m.len()).sum();
        if size > 0 || t.elapsed() > Duration::from_secs(30) {
            use std::os::unix::fs::PermissionsExt;
            break (size, files.first().map(|m| m.permissions().mode() & 0o777));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    assert!(grown > 0, "no extracted file appeared");
    assert_eq!(mode, Some(0o600));
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let left: Vec<_> = std::fs::read_dir(&tmp).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// An output that is a FIFO, or a symbolic link to /dev/null, is refused before anything is
/// written (a usage error naming the flag), and stays what it was.
#[test]
fn an_output_that_is_no_regular_file_is_refused() {
    use std::os::unix::fs::FileTypeExt;
    let d = tempfile::tempdir().unwrap();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/cnn_op7.onnx");
    let fifo = d.path().join("fifo.onnx");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let null = d.path().join("null.onnx");
    std::os::unix::fs::symlink("/dev/null", &null).unwrap();
    for out in [&fifo, &null] {
        let res = Command::new(bin())
            .args(["convert", "-sf", "onnx", "-iw"])
            .arg(&model)
            .args(["-df", "onnx", "-om"])
            .arg(out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{err}");
        assert!(
            err.contains("-om") && err.contains(&*out.to_string_lossy()),
            "{err}"
        );
        assert!(err.contains("not a regular file"), "{err}");
    }
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(std::fs::symlink_metadata(&null).unwrap().is_symlink());
    // The code beside a PyTorch model is no flag's path: refused when it is written (exit 1).
    let code = d.path().join("m.py");
    let c = std::ffi::CString::new(code.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let res = Command::new(bin())
        .args(["convert", "-sf", "onnx", "-iw"])
        .arg(&model)
        .args(["-df", "pytorch", "-om"])
        .arg(d.path().join("m.pth"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(
        err.contains("m.py") && err.contains("not a regular file"),
        "{err}"
    );
    assert!(std::fs::metadata(&code).unwrap().file_type().is_fifo());
    assert!(!d.path().join("m.pth").exists());
    let left: Vec<_> = std::fs::read_dir(d.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".mmdnn-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
