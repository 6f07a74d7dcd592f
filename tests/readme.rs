//! README's quick start, run as a new user would run it: the commands of the fenced block marked
//! `<!-- quickstart -->`, taken from README.md (never copied), each run literally by `sh` in an
//! empty directory holding only the repository's tracked `examples/`, with nothing on PATH but
//! the commands `cargo build` makes (`mmdnn` and MMdnn's five names): no Python, no venv. Each
//! must exit 0 and print something, every file named after an output flag must exist and not be
//! empty, and the lines of the `<!-- quickstart-output -->` block must be printed, in order.
use std::path::{Path, PathBuf};
use std::process::Command;

const README: &str = include_str!("../README.md");
const OUTPUT_FLAGS: &[&str] = &["-om", "--outputModel", "-o", "--output", "-d", "-dw"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The body of the first fenced block after `marker`.
fn block(marker: &str) -> Vec<&'static str> {
    let start = README
        .find(marker)
        .unwrap_or_else(|| panic!("README.md has no {marker} block"));
    let mut lines = README[start + marker.len()..]
        .lines()
        .skip_while(|l| l.trim().is_empty());
    let fence = lines.next().unwrap_or_default();
    assert!(
        fence.starts_with("```"),
        "{marker} is not followed by a fenced block"
    );
    lines.take_while(|l| !l.starts_with("```")).collect()
}

/// Shell commands of a block: `\`-continued lines joined, blank lines and comments left out.
fn commands(lines: &[&str]) -> Vec<String> {
    let mut out = vec![];
    let mut current = String::new();
    for line in lines {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    assert!(current.is_empty(), "the block ends inside a continued line");
    out
}

/// The files a command names after an output flag.
fn outputs(command: &str) -> Vec<&str> {
    let words: Vec<&str> = command.split_whitespace().collect();
    words
        .windows(2)
        .filter(|w| OUTPUT_FLAGS.contains(&w[0]))
        .map(|w| w[1])
        .collect()
}

/// `mmdnn` and the five MMdnn command names as `cargo build` makes them, side by side.
fn installed(name: &str) -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_mmdnn")).with_file_name(name)
}

/// A fresh directory with the tracked files of `examples/` (a clone has no others) and a `bin/`
/// of links to the built commands.
fn fresh_checkout() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let listed = Command::new("git")
        .args(["ls-files", "-z", "examples"])
        .current_dir(root())
        .output()
        .expect("git runs (the quick start is checked on the tracked files of examples/)");
    assert!(listed.status.success(), "git ls-files failed: {listed:?}");
    let files: Vec<&[u8]> = listed
        .stdout
        .split(|&b| b == 0)
        .filter(|f| !f.is_empty())
        .collect();
    assert!(!files.is_empty(), "git tracks no file under examples/");
    for f in files {
        let rel = Path::new(std::str::from_utf8(f).unwrap());
        let dest = dir.path().join(rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(root().join(rel), &dest).unwrap();
    }
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for (name, _) in std::iter::once(&("mmdnn", "")).chain(mmdnn::cli::ALIASES) {
        std::os::unix::fs::symlink(installed(name), bin.join(name)).unwrap();
    }
    (dir, bin)
}

#[test]
fn quick_start_runs_as_written_with_no_python() {
    let commands = commands(&block("<!-- quickstart -->"));
    assert!(!commands.is_empty(), "the quick-start block has no command");
    let (dir, bin) = fresh_checkout();
    let mut printed = String::new();
    for command in &commands {
        let out = Command::new("/bin/sh")
            .args(["-c", command])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", &bin)
            .env("HOME", dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "README quick start: `{command}` failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
            out.status
        );
        // A conversion's summary goes to stderr, a report such as `inspect`'s to stdout.
        assert!(
            !stdout.trim().is_empty() || !stderr.trim().is_empty(),
            "README quick start: `{command}` printed nothing"
        );
        for file in outputs(command) {
            let len = std::fs::metadata(dir.path().join(file)).map_or(0, |m| m.len());
            assert!(len > 0, "README quick start: `{command}` wrote no {file}");
        }
        printed.push_str(&stdout);
        printed.push_str(&stderr);
    }
    // Each line README shows is printed, in README's order.
    let mut printed_lines = printed.lines();
    for shown in block("<!-- quickstart-output -->") {
        assert!(
            printed_lines.any(|l| l == shown),
            "README shows the line {shown:?}, which the quick start does not print (in that \
             order); it printed:\n{printed}"
        );
    }
}

#[test]
fn cargo_build_makes_every_mmdnn_command_name() {
    for (alias, sub) in mmdnn::cli::ALIASES {
        let help = |program: &Path, args: &[&str]| {
            let out = Command::new(program).args(args).output().unwrap();
            assert!(
                out.status.success(),
                "{} {args:?}: {out:?}",
                program.display()
            );
            let text = String::from_utf8(out.stdout).unwrap();
            text.lines().next().unwrap_or_default().to_string()
        };
        let want = help(&installed("mmdnn"), &[sub, "--help"]);
        assert_eq!(
            help(&installed(alias), &["--help"]),
            want,
            "{alias} does not run `mmdnn {sub}`"
        );
    }
}

#[test]
fn block_reading_joins_continuations_and_finds_output_files() {
    let lines = [
        "# comment",
        "",
        "mmconvert -sf a \\",
        "  -om x.pt",
        "mmdnn toir -o p",
    ];
    assert_eq!(
        commands(&lines),
        ["mmconvert -sf a -om x.pt", "mmdnn toir -o p"]
    );
    assert_eq!(outputs("mmconvert -sf a -om x.pt"), ["x.pt"]);
}
