//! What the fuzz targets share: the input written to a scratch file (most readers take a path,
//! as the CLI gives them) and a loaded model read whole (every weight's bytes), so a target
//! exercises the full read, not only the header.
use mmdnn::frontends::{Loaded, SourceArgs};
use mmdnn::weights::WeightReader;
use std::path::PathBuf;
use std::sync::OnceLock;

/// This process's scratch directory, under `MMDNN_FUZZ_SCRATCH` (scripts/fuzz sets it to a
/// directory it removes when done), else in memory (/dev/shm) where there is one.
fn scratch_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = std::env::var_os("MMDNN_FUZZ_SCRATCH")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|p| p.is_dir()))
            .unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("mmdnn-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir
    })
}

/// Writes `data` to the scratch file `name` (replacing the previous input) and returns its path.
pub fn scratch(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    std::fs::write(&path, data).expect("scratch file");
    path
}

/// Source arguments naming one model file.
pub fn network(path: PathBuf) -> SourceArgs {
    SourceArgs {
        network: Some(path),
        ..SourceArgs::default()
    }
}

/// Reads every weight a reader lists: its info, its bytes, and its bytes streamed to a sink.
pub fn read_weights(weights: &dyn WeightReader) {
    for (node, param) in weights.keys() {
        let _ = weights.info(&node, &param);
        let _ = weights.read(&node, &param);
        let _ = weights.write_to(&node, &param, &mut Vec::new());
    }
}

/// Reads a loaded model whole: its IR (encoded as the `toir` writer would) and every weight.
pub fn read_loaded(loaded: &Loaded) {
    let _ = mmdnn::ir::serialize::to_proto(&loaded.graph);
    read_weights(loaded.weights.as_ref());
}
