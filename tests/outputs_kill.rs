//! Nothing left behind, sets never mixed (issue 15, item 8): writers of an IR set (`toir`:
//! `.pb` + `.json` + `.npz`) killed with SIGTERM and SIGKILL at many points, two writers of one
//! set at once, and SIGTERM while Python runs (its process and work directory go too). The
//! commit's window is widened by a test hook (`MMDNN_TEST_COMMIT_PAUSE_MS`,
//! `src/output/commit.rs`) so that kills and the second writer land inside it.
#![cfg(target_os = "linux")]

use mmdnn::backends::onnx::{self, Options};
use mmdnn::ir::passes::{self, layout::Target, Wants};
use mmdnn::ir::{AttrValue, DType, Graph, Node};
use mmdnn::weights::{MemoryWeights, Tensor};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("mmdnn")
}

/// An ONNX model x [1, 512] → FullyConnected `<tag>_fc` (4096 units: 8 MB of weights), so every
/// file of its IR names `tag`.
fn model(dir: &Path, tag: &str) -> PathBuf {
    let mut g = Graph::default();
    let mut w = MemoryWeights::default();
    let x = g
        .add(
            Node::new(format!("{tag}_x"), "DataInput")
                .with_attr("dtype", AttrValue::Type(DType::F32))
                .with_attr("shape", AttrValue::Shape(vec![1, 512])),
        )
        .unwrap();
    g.inputs.push(format!("{tag}_x"));
    let fc = Node::new(format!("{tag}_fc"), "FullyConnected")
        .with_inputs([x])
        .with_attr("units", AttrValue::Int(4096))
        .with_attr("use_bias", AttrValue::Bool(false));
    let f = g.add(fc).unwrap();
    let values: Vec<f32> = (0..512 * 4096).map(|i| (i % 97) as f32).collect();
    w.insert(
        &format!("{tag}_fc"),
        "weights",
        Tensor::from_f32(vec![512, 4096], &values).unwrap(),
    );
    g.outputs.push(f);
    mmdnn::ir::validate::check(&mut g, Some(&w)).unwrap();
    let path = dir.join(format!("{tag}.onnx"));
    let wants = Wants {
        layout: Target::ChannelsFirst,
        io: Default::default(),
    };
    onnx::save(
        passes::prepare(&g, &w, wants).unwrap(),
        &path,
        Options::default(),
    )
    .unwrap();
    path
}

/// `mmdnn toir -f onnx -n <model> -o <prefix>`, started.
fn toir(model: &Path, prefix: &Path, pause_ms: u64) -> std::process::Child {
    Command::new(bin())
        .args(["toir", "-f", "onnx", "-n"])
        .arg(model)
        .arg("-o")
        .arg(prefix)
        .env("MMDNN_TEST_COMMIT_PAUSE_MS", pause_ms.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

const SET: [&str; 3] = ["pb", "json", "npz"];

/// Which model the file at `path` comes from (None: no file).
fn tag_of(path: &Path) -> Option<&'static str> {
    let bytes = std::fs::read(path).ok()?;
    let has = |tag: &str| bytes.windows(tag.len()).any(|w| w == tag.as_bytes());
    Some(match (has("old_fc"), has("new_fc")) {
        (true, false) => "old",
        (false, true) => "new",
        other => panic!("{} holds {other:?}", path.display()),
    })
}

/// Which model each file of the IR set at `prefix` comes from.
fn set_of(prefix: &Path) -> Vec<&'static str> {
    SET.iter()
        .map(|ext| tag_of(&prefix.with_extension(ext)).expect("a file of the set is missing"))
        .collect()
}

/// The one model the whole set comes from; panics on a mixed set.
fn whole_set(prefix: &Path) -> &'static str {
    let set = set_of(prefix);
    assert!(set.iter().all(|s| *s == set[0]), "mixed set: {set:?}");
    set[0]
}

/// The names in `dir` that are neither the IR set nor the models.
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".mmdnn-"))
        .collect()
}

fn signal(child: &std::process::Child, sig: i32) {
    // SAFETY: a signal to our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Kills writers with SIGTERM and SIGKILL at points spread over a whole run (the commit's
/// window widened by the test hook, so some kills land between two renames): after SIGTERM the
/// set is whole and nothing is left; after SIGKILL the next run in the directory (one that
/// fails on a broken model, so it writes nothing itself) completes or removes what was left.
#[test]
fn killed_writers_leave_a_whole_set_and_no_temporaries() {
    let d = tempfile::tempdir().unwrap();
    let models = [model(d.path(), "old"), model(d.path(), "new")];
    let broken = d.path().join("broken.onnx");
    std::fs::write(&broken, b"not a model").unwrap();
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let prefix = out.join("ir");
    let pause = 150;
    let t = Instant::now();
    assert!(toir(&models[0], &prefix, pause).wait().unwrap().success());
    let full = t.elapsed();
    assert_eq!(whole_set(&prefix), "old");
    let (mut seen_partial, mut seen_journal, mut finished) = (0, 0, 0);
    for round in 0..24u32 {
        let current = whole_set(&prefix);
        let next = if current == "old" { 1 } else { 0 };
        let mut child = toir(&models[next], &prefix, pause);
        // Spread over the run, with a varying offset (Weyl sequence).
        let frac = (f64::from(round) * 0.618_034).fract();
        std::thread::sleep(full.mul_f64(frac * 1.1));
        let sig = if round % 2 == 0 {
            libc::SIGTERM
        } else {
            libc::SIGKILL
        };
        signal(&child, sig);
        let status = child.wait().unwrap();
        if status.success() {
            finished += 1;
        }
        let left = leftovers(&out);
        if sig == libc::SIGTERM {
            use std::os::unix::process::ExitStatusExt;
            assert!(
                status.success() || status.code() == Some(143) || status.signal() == Some(15),
                "{status:?}"
            );
            assert!(left.is_empty(), "after SIGTERM: {left:?}");
            whole_set(&prefix);
        } else {
            seen_partial += left.iter().any(|n| n.ends_with(".partial")) as u32;
            seen_journal += left.iter().any(|n| n.ends_with(".commit")) as u32;
            let next_run = Command::new(bin())
                .args(["toir", "-f", "onnx", "-n"])
                .arg(&broken)
                .arg("-o")
                .arg(&prefix)
                .output()
                .unwrap();
            assert_eq!(next_run.status.code(), Some(1));
            let left = leftovers(&out);
            assert!(left.is_empty(), "after SIGKILL and a next run: {left:?}");
            whole_set(&prefix);
        }
    }
    // The kills hit the writing and some the commit itself; some runs may have finished.
    assert!(seen_partial > 0, "no kill landed while writing");
    eprintln!(
        "full run {full:?}; SIGKILL left partials {seen_partial}×, a journal {seen_journal}×; \
         {finished} runs finished"
    );
}

/// Two writers of the same set at once, the first paused inside its commit: the second waits
/// for it, and the set is one writer's.
#[test]
fn two_writers_at_once_leave_one_writers_set() {
    let d = tempfile::tempdir().unwrap();
    let models = [model(d.path(), "old"), model(d.path(), "new")];
    let prefix = d.path().join("ir");
    let tags = ["old", "new"];
    for round in 0..3 {
        // The first writer writes the other model than the set on disk (old in round 0).
        let first = match round {
            0 => 0,
            _ => usize::from(whole_set(&prefix) == "old"),
        };
        let second = 1 - first;
        let mut a = toir(&models[first], &prefix, 1500);
        // Start the second while the first is in its commit: its .npz (renamed first) is in
        // place, its .pb not yet.
        let t = Instant::now();
        while tag_of(&prefix.with_extension("npz")) != Some(tags[first]) {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "first writer never committed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut b = toir(&models[second], &prefix, 0);
        assert!(a.wait().unwrap().success());
        assert!(b.wait().unwrap().success());
        assert_eq!(whole_set(&prefix), tags[second]);
        assert!(leftovers(d.path()).is_empty());
    }
}

/// SIGTERM while `tomodel` runs Python (a stand-in that sleeps): the child is stopped, the work
/// directory beside the output is removed, and mmdnn exits with 143 at once.
#[test]
fn sigterm_stops_the_python_child_and_removes_its_work_directory() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mmdnn-ir");
    let ir = d.path().join("ir");
    let made = Command::new(bin())
        .args(["toir", "-f", "mmdnn", "-n"])
        .arg(example.join("keras_tiny.pb"))
        .arg("-w")
        .arg(example.join("keras_tiny.npy"))
        .arg("-o")
        .arg(&ir)
        .output()
        .unwrap();
    assert!(made.status.success());
    let script = d.path().join("code.py");
    std::fs::write(&script, "# stands in for tocode's script\n").unwrap();
    let python = d.path().join("python");
    let pid_file = d.path().join("child.pid");
    std::fs::write(
        &python,
        format!(
            "#!/bin/sh\necho $$ > '{}'\nexec sleep 60\n",
            pid_file.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut child = Command::new(bin())
        .args(["tomodel", "-f", "onnx", "-in"])
        .arg(&script)
        .arg("-iw")
        .arg(ir.with_extension("npz"))
        .arg("-o")
        .arg(out.join("model.onnx"))
        .arg("--python")
        .arg(&python)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            break pid;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "Python never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(
        leftovers(&out).len(),
        1,
        "the work directory is beside the output"
    );
    signal(&child, libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{status:?}");
    assert!(t.elapsed() < Duration::from_secs(10));
    // The child is gone (or a zombie left for init to reap).
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let running = state
        .rsplit(')')
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .is_some_and(|s| s != "Z" && s != "X");
    assert!(!running, "the Python child still runs: {state}");
    assert!(leftovers(&out).is_empty(), "{:?}", leftovers(&out));
}
