//! Compiles `proto/` into Rust with prost-build, using protox (a pure-Rust protobuf compiler), so a
//! machine without `protoc` builds. The descriptor set is also written to OUT_DIR for prost-reflect
//! (protobuf JSON output).
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["proto/ir/graph.proto", "proto/onnx/onnx.proto"];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(protos, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("descriptors.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    // Maps as BTreeMaps: a map field is encoded in key order, so the same graph gives the same bytes.
    prost_build::Config::new()
        .bytes(["."])
        .btree_map(["."])
        .compile_fds(fds)?;
    Ok(())
}
