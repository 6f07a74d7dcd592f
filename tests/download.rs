//! `mmdnn download` against a small HTTP server on 127.0.0.1 (a thread of this test): verified
//! downloads, checksum mismatches, a connection cut and resumed with a Range request, HTTP and
//! connection errors, the catalogue listing, and `--convert-to`.
use assert_cmd::Command;
use predicates::prelude::*;
use sha2::Digest;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How the server answers one path.
#[derive(Clone, Default)]
struct Route {
    body: Vec<u8>,
    /// Closes the first whole-file response after half the body.
    cut_first: bool,
    /// Answers Range requests with the whole file (200), as servers without resume do.
    ignore_range: bool,
}

/// The requests the server saw: (path, Range header).
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct Server {
    base: String,
    log: Log,
}

impl Server {
    /// Serves `routes` (path → answer), 404 for any other path. The thread answers at most 64
    /// connections, then ends.
    fn start(routes: Vec<(&str, Route)>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let routes: HashMap<String, Route> = routes
            .into_iter()
            .map(|(p, r)| (p.to_string(), r))
            .collect();
        let log: Log = Arc::default();
        let seen = log.clone();
        std::thread::spawn(move || {
            let mut cut = HashSet::new();
            for stream in listener.incoming().take(64).flatten() {
                let _ = answer(stream, &routes, &seen, &mut cut);
            }
        });
        Server { base, log }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.log.lock().unwrap().clone()
    }
}

fn answer(
    mut stream: TcpStream,
    routes: &HashMap<String, Route>,
    log: &Log,
    cut: &mut HashSet<String>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    log.lock().unwrap().push((path.clone(), range.clone()));
    let Some(route) = routes.get(&path) else {
        return stream.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
        );
    };
    let len = route.body.len();
    let start = range
        .as_deref()
        .filter(|_| !route.ignore_range)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    match start {
        Some(s) if s >= len => stream.write_all(
            format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{len}\r\n\
                 Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        ),
        Some(s) => {
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{len}\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                len - 1,
                len - s
            );
            stream.write_all(head.as_bytes())?;
            stream.write_all(&route.body[s..])
        }
        None => {
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
            stream.write_all(head.as_bytes())?;
            if route.cut_first && cut.insert(path) {
                stream.write_all(&route.body[..len / 2])?;
                stream.flush()?;
                return stream.shutdown(std::net::Shutdown::Both);
            }
            stream.write_all(&route.body)
        }
    }
}

/// Deterministic bytes that compress badly, `n` of them.
fn payload(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 24) as u8
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

fn md5_hex(bytes: &[u8]) -> String {
    hex(&md5::Md5::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `mmdnn download ARGS` with `catalogue` (JSON file) in force unless None, no proxy.
fn download(catalogue: Option<&Path>, base: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mmdnn"));
    cmd.arg("download").args(args);
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
        "MMDNN_DOWNLOAD_CATALOGUE",
        "MMDNN_DOWNLOAD_BASE",
    ] {
        cmd.env_remove(var);
    }
    if let Some(c) = catalogue {
        cmd.env("MMDNN_DOWNLOAD_CATALOGUE", c);
    }
    if let Some(b) = base {
        cmd.env("MMDNN_DOWNLOAD_BASE", b);
    }
    cmd
}

/// A one-entry catalogue in `dir`; `checksum` is a ("md5" | "sha256", hex) pair.
fn catalogue(
    dir: &Path,
    framework: &str,
    name: &str,
    url: &str,
    checksum: (&str, &str),
) -> PathBuf {
    let path = dir.join("catalogue.json");
    let mut entry = serde_json::json!({
        "framework": framework, "name": name, "url": url, "contents": "model",
        "description": "test fixture",
    });
    entry[checksum.0] = checksum.1.into();
    let doc = serde_json::json!({ "models": [entry] });
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    path
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn good_download_is_verified_and_kept() {
    let body = payload(300_000, 1);
    let server = Server::start(vec![(
        "/m/net.onnx",
        Route {
            body: body.clone(),
            ..Route::default()
        },
    )]);
    let tmp = tempfile::tempdir().unwrap();
    let cat = catalogue(
        tmp.path(),
        "onnx",
        "net",
        &server.url("/m/net.onnx"),
        ("md5", &md5_hex(&body)),
    );
    let out = tmp.path().join("models");
    let args = ["-f", "onnx", "-n", "net", "-o", out.to_str().unwrap()];
    download(Some(&cat), None, &args)
        .assert()
        .success()
        .stdout(
            predicate::str::contains("onnx net downloaded to").and(predicate::str::contains(
                format!("300000 bytes, md5 {} verified", md5_hex(&body)),
            )),
        )
        // No progress bar when stderr is not a terminal.
        .stderr(predicate::str::contains("\u{1b}[").not());
    assert_eq!(std::fs::read(out.join("net.onnx")).unwrap(), body);
    assert_eq!(files_in(&out), ["net.onnx"]);
    // A second run finds the verified file and asks the server nothing.
    download(Some(&cat), None, &args)
        .assert()
        .success()
        .stdout(predicate::str::contains("already in"));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn corrupted_file_is_deleted_naming_both_checksums() {
    // A real catalogue entry (torchvision's squeezenet1_1, sha256 prefix b8a52dc0) fetched from a
    // mirror that serves other bytes.
    let body = payload(50_000, 2);
    let server = Server::start(vec![(
        "/mirror/squeezenet1_1-b8a52dc0.pth",
        Route {
            body: body.clone(),
            ..Route::default()
        },
    )]);
    let out = tempfile::tempdir().unwrap();
    let mirror = server.url("/mirror/");
    download(
        None,
        Some(&mirror),
        &["-f", "pytorch", "-n", "squeezenet1_1", "-o"],
    )
    .arg(out.path())
    .assert()
    .code(1)
    .stderr(
        predicate::str::contains("checksum mismatch")
            .and(predicate::str::contains(
                server.url("/mirror/squeezenet1_1-b8a52dc0.pth"),
            ))
            .and(predicate::str::contains(
                "expected sha256 starting with b8a52dc0",
            ))
            .and(predicate::str::contains(format!(
                "got sha256 {}",
                sha256_hex(&body)
            ))),
    );
    assert!(
        files_in(out.path()).is_empty(),
        "{:?}",
        files_in(out.path())
    );
}

#[test]
fn wrong_size_is_refused_before_writing() {
    // The ONNX Model Zoo's squeezenet1.1 has an exact size in the catalogue (4956208 bytes).
    let server = Server::start(vec![(
        "/squeezenet1.1-7.onnx",
        Route {
            body: payload(1000, 3),
            ..Route::default()
        },
    )]);
    let out = tempfile::tempdir().unwrap();
    download(
        None,
        Some(&server.base),
        &["-f", "onnx", "-n", "squeezenet1_1"],
    )
    .arg("-o")
    .arg(out.path())
    .assert()
    .code(1)
    .stderr(predicate::str::contains("sends 1000 bytes").and(predicate::str::contains("4956208")));
    assert!(files_in(out.path()).is_empty());
}

#[test]
fn cut_download_resumes_with_a_range_request() {
    let body = payload(400_000, 4);
    let server = Server::start(vec![(
        "/net.onnx",
        Route {
            body: body.clone(),
            cut_first: true,
            ..Route::default()
        },
    )]);
    let tmp = tempfile::tempdir().unwrap();
    let cat = catalogue(
        tmp.path(),
        "onnx",
        "net",
        &server.url("/net.onnx"),
        ("sha256", &sha256_hex(&body)),
    );
    let out = tmp.path().join("out");
    let args = ["-f", "onnx", "-n", "net", "-p", out.to_str().unwrap()];
    download(Some(&cat), None, &args).assert().code(1).stderr(
        predicate::str::contains("interrupted after 200000 of 400000 bytes").and(
            predicate::str::contains("run the same command again to resume"),
        ),
    );
    assert_eq!(files_in(&out), ["net.onnx.part"]);
    assert_eq!(
        std::fs::read(out.join("net.onnx.part")).unwrap(),
        body[..200_000]
    );
    download(Some(&cat), None, &args)
        .assert()
        .success()
        .stderr(predicate::str::contains("resuming"));
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].1, None);
    assert_eq!(requests[1].1.as_deref(), Some("bytes=200000-"));
    assert_eq!(std::fs::read(out.join("net.onnx")).unwrap(), body);
    assert_eq!(files_in(&out), ["net.onnx"]);
}

#[test]
fn server_without_resume_starts_over() {
    let body = payload(100_000, 5);
    let server = Server::start(vec![(
        "/net.onnx",
        Route {
            body: body.clone(),
            ignore_range: true,
            ..Route::default()
        },
    )]);
    let tmp = tempfile::tempdir().unwrap();
    let cat = catalogue(
        tmp.path(),
        "onnx",
        "net",
        &server.url("/net.onnx"),
        ("sha256", &sha256_hex(&body)),
    );
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // A stale partial file of other bytes: appending to it would fail the checksum.
    std::fs::write(out.join("net.onnx.part"), payload(30_000, 6)).unwrap();
    download(Some(&cat), None, &["-f", "onnx", "-n", "net", "-o"])
        .arg(&out)
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "does not resume downloads: starting over",
        ));
    assert_eq!(server.requests()[0].1.as_deref(), Some("bytes=30000-"));
    assert_eq!(std::fs::read(out.join("net.onnx")).unwrap(), body);
    assert_eq!(files_in(&out), ["net.onnx"]);
}

#[test]
fn http_error_names_url_and_status() {
    let server = Server::start(vec![]);
    let tmp = tempfile::tempdir().unwrap();
    let url = server.url("/gone.onnx");
    let cat = catalogue(
        tmp.path(),
        "onnx",
        "gone",
        &url,
        ("sha256", &"0".repeat(64)),
    );
    let out = tmp.path().join("out");
    download(Some(&cat), None, &["-f", "onnx", "-n", "gone", "-o"])
        .arg(&out)
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!(
            "cannot download {url}: HTTP 404 Not Found"
        )));
    assert!(files_in(&out).is_empty());
}

#[test]
fn unreachable_server_is_an_offline_error() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/net.onnx");
    let cat = catalogue(tmp.path(), "onnx", "net", &url, ("md5", &"0".repeat(32)));
    download(Some(&cat), None, &["-f", "onnx", "-n", "net", "-o"])
        .arg(tmp.path().join("out"))
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains(format!("cannot download {url}: "))
                .and(predicate::str::contains("check the network connection")),
        );
    assert!(files_in(&tmp.path().join("out")).is_empty());
}

#[test]
fn list_shows_the_catalogue() {
    let all = download(None, None, &["--list"]).assert().success();
    let text = String::from_utf8(all.get_output().stdout.clone()).unwrap();
    for needle in [
        "keras (8 models)",
        "pytorch (12 models)",
        "onnx (7 models)",
        "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/\
         vgg16_weights_tf_dim_ordering_tf_kernels.h5",
        "https://download.pytorch.org/models/resnet50-0676ba61.pth",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    download(None, None, &["-f", "pytorch", "--list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("vgg19_bn").and(predicate::str::contains("keras").not()));
    // MMdnn's spelling: mmdownload -f FW without -n lists FW's models.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("mmdownload");
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("mmdnn"), &link).unwrap();
    Command::new(&link)
        .args(["-f", "keras"])
        .env_remove("MMDNN_DOWNLOAD_CATALOGUE")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("inception_resnet_v2")
                .and(predicate::str::contains("onnx").not()),
        );
}

#[test]
fn names_outside_the_catalogue_are_usage_errors() {
    download(None, None, &["-f", "keras", "-n", "vgg17"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("no keras model 'vgg17'")
                .and(predicate::str::contains("vgg16, vgg19")),
        );
    download(None, None, &["-f", "caffe", "-n", "alexnet"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no caffe models"));
    download(None, None, &[]).assert().code(2);
    download(None, None, &["-n", "vgg16"]).assert().code(2);
    download(None, None, &["-f", "keras", "-n", "vgg16", "-i", "cat.jpg"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("mmdnn run"));
}

#[test]
fn convert_to_runs_the_convert_pipeline() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx/cnn_op7.onnx");
    let body = std::fs::read(&model).unwrap();
    let server = Server::start(vec![(
        "/cnn_op7.onnx",
        Route {
            body: body.clone(),
            ..Route::default()
        },
    )]);
    let tmp = tempfile::tempdir().unwrap();
    let cat = catalogue(
        tmp.path(),
        "onnx",
        "tiny",
        &server.url("/cnn_op7.onnx"),
        ("sha256", &sha256_hex(&body)),
    );
    let out = tmp.path().join("out");
    download(
        Some(&cat),
        None,
        &["-f", "onnx", "-n", "tiny", "--convert-to", "pytorch", "-o"],
    )
    .arg(&out)
    .assert()
    .success()
    .stderr(predicate::str::contains("(PyTorch state_dict)"));
    assert_eq!(files_in(&out), ["cnn_op7.onnx", "tiny.pth", "tiny.py"]);
    // The same files as `mmdnn convert` writes.
    let direct = tmp.path().join("direct");
    std::fs::create_dir(&direct).unwrap();
    Command::new(assert_cmd::cargo::cargo_bin("mmdnn"))
        .args(["convert", "-sf", "onnx", "-df", "pytorch", "-iw"])
        .arg(&model)
        .arg("-om")
        .arg(direct.join("tiny.pth"))
        .assert()
        .success();
    for f in ["tiny.pth", "tiny.py"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(direct.join(f)).unwrap(),
            "{f}"
        );
    }
}

#[test]
fn weights_only_files_are_not_converted_or_downloaded() {
    let server = Server::start(vec![]);
    let out = tempfile::tempdir().unwrap();
    download(
        None,
        Some(&server.base),
        &["-f", "keras", "-n", "vgg16", "--convert-to", "onnx", "-o"],
    )
    .arg(out.path())
    .assert()
    .code(1)
    .stderr(predicate::str::contains("keras vgg16 holds weights only"));
    assert!(server.requests().is_empty());
    assert!(files_in(out.path()).is_empty());
}

#[test]
fn complete_part_file_is_checked_and_renamed() {
    // A run cut after the last byte but before the rename: the server has nothing past it (416).
    let body = payload(20_000, 7);
    let server = Server::start(vec![(
        "/net.onnx",
        Route {
            body: body.clone(),
            ..Route::default()
        },
    )]);
    let tmp = tempfile::tempdir().unwrap();
    let cat = catalogue(
        tmp.path(),
        "onnx",
        "net",
        &server.url("/net.onnx"),
        ("sha256", &sha256_hex(&body)),
    );
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("net.onnx.part"), &body).unwrap();
    download(Some(&cat), None, &["-f", "onnx", "-n", "net", "-o"])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(server.requests()[0].1.as_deref(), Some("bytes=20000-"));
    assert_eq!(files_in(&out), ["net.onnx"]);
    assert_eq!(std::fs::read(out.join("net.onnx")).unwrap(), body);
}
