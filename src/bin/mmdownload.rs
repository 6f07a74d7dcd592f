//! `mmdownload`: MMdnn's command name for `mmdnn download` (see `alias`).
mod alias;

fn main() {
    std::process::exit(alias::exec("mmdownload"));
}
