//! `mmtoir`: MMdnn's command name for `mmdnn toir` (see `alias`).
mod alias;

fn main() {
    std::process::exit(alias::exec("mmtoir"));
}
