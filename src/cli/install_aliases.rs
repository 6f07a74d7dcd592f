//! `mmdnn install-aliases DIR`: symlinks named after MMdnn's commands, pointing at this binary.
use super::ALIASES;
use anyhow::{Context, Result};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Directory for the links (e.g. ~/.local/bin)
    pub dir: PathBuf,
}

pub fn run(a: Args) -> Result<i32> {
    let exe = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .context("cannot locate the mmdnn binary")?;
    std::fs::create_dir_all(&a.dir)
        .with_context(|| format!("cannot create {}", a.dir.display()))?;
    for (alias, _) in ALIASES {
        let link = a.dir.join(alias);
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link)
                .with_context(|| format!("cannot replace {}", link.display()))?;
        }
        std::os::unix::fs::symlink(&exe, &link)
            .with_context(|| format!("cannot create {}", link.display()))?;
        println!("{} -> {}", link.display(), exe.display());
    }
    Ok(0)
}
