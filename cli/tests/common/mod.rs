//! Starting `streampool serve` from the tests: the command, the running server (killed when the
//! test ends, passed or not) and the address it prints on its first line.
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

/// A server process, killed on drop. Its stdout stays open while it runs.
pub struct Running {
    pub child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `streampool serve` on the CPU with `model` and `args`, on any free port, two workers.
pub fn serve(model: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_streampool"));
    command
        .args(["serve", "--device", "cpu", "--addr", "127.0.0.1:0", "--workers", "2", "--model"])
        .arg(model)
        .args(args);
    command
}

/// Start `command` (a `serve`, possibly wrapped in a shell), and read the address from its first
/// line.
pub fn start(mut command: Command) -> (Running, SocketAddr) {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let server = Running { child, _stdout: stdout };
    let addr = line
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .parse()
        .unwrap();
    (server, addr)
}
