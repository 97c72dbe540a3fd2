//! The process helpers: ChildGuard, wait_until, free_port, python.

use std::process::Command;
use std::time::{Duration, Instant};

use rtdp_testkit::{free_port, python, repo_root, wait_until, ChildGuard};

#[test]
fn child_guard_kills_on_drop() {
    let guard = ChildGuard::new(Command::new("sleep").arg("1000").spawn().unwrap());
    let pid = guard.pid();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    drop(guard);
    // Reaped by drop, so the /proc entry is gone at once.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn child_guard_sigterm_and_wait_timeout() {
    let mut guard = ChildGuard::new(Command::new("sleep").arg("1000").spawn().unwrap());
    assert!(guard.wait_timeout(Duration::from_millis(100)).is_none());
    guard.sigterm();
    let status = guard.wait_timeout(Duration::from_secs(10)).expect("exited");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc_sigterm()));
    // Signalling a reaped child is a no-op.
    guard.sigkill();
}

fn libc_sigterm() -> i32 {
    15
}

#[test]
fn wait_until_returns_when_true() {
    let start = Instant::now();
    let mut n = 0;
    wait_until(Duration::from_secs(5), "three polls", || {
        n += 1;
        n >= 3
    });
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
#[should_panic(expected = "never true")]
fn wait_until_panics_naming_what() {
    wait_until(Duration::from_millis(200), "never true", || false);
}

#[test]
fn free_port_is_bindable() {
    let p = free_port();
    std::net::TcpListener::bind(("127.0.0.1", p)).unwrap();
}

#[test]
fn repo_root_has_the_scripts() {
    assert!(repo_root().join("shell/local-kafka.sh").exists());
}

#[test]
fn python_has_pyarrow_and_duckdb() {
    let py = python();
    let out = Command::new(&py)
        .args(["-c", "import pyarrow, duckdb; print('ok')"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
