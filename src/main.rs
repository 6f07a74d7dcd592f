fn main() {
    // A closed pipe ends the process quietly, as for any Unix filter (`mmdnn ops | head`),
    // instead of a panic in println!.
    #[cfg(target_os = "linux")]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // First, before any thread starts: SIGINT, SIGTERM and SIGHUP remove the temporaries.
    mmdnn::output::install_signal_handler();
    std::process::exit(mmdnn::cli::main());
}
