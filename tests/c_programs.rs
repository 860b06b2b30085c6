//! Real C programs, compiled with the system cc against include/wsembed.h
//! and the built shared library, run against servers on 127.0.0.1: the
//! project's own and an independent one (Python `websockets`).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use common::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// target/<profile> with a fresh libwsembed.so: `cargo test` builds only
/// the rlib, so the shared library is built here, with this run's profile
/// and features (cargo reuses the compiled crate, so this is quick).
fn lib_dir() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
            let mut cargo = Command::new(env!("CARGO"));
            cargo
                .args(["build", "--lib", "--quiet"])
                .current_dir(root());
            if dir.file_name().is_some_and(|n| n == "release") {
                cargo.arg("--release");
            }
            if !cfg!(feature = "tls") {
                cargo.arg("--no-default-features");
            }
            let status = cargo.status().expect("cargo runs");
            assert!(status.success(), "cargo build --lib failed");
            assert!(
                dir.join("libwsembed.so").exists(),
                "no libwsembed.so in {}",
                dir.display()
            );
            dir
        })
        .clone()
}

/// Compiles tests/c/<name>.c with warnings as errors, once per test run
/// (tests run in parallel: a binary being rewritten cannot be executed).
pub fn compile_c(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap();
    if let Some((_, path)) = built.iter().find(|(n, _)| n == name) {
        return path.clone();
    }
    let path = compile_c_now(name);
    built.push((name.to_owned(), path.clone()));
    path
}

fn compile_c_now(name: &str) -> PathBuf {
    let lib = lib_dir();
    let out = lib.join(format!("c-test-{name}"));
    let status = Command::new("cc")
        .args([
            "-std=c11",
            "-D_POSIX_C_SOURCE=200809L",
            "-Wall",
            "-Wextra",
            "-Wpedantic",
            "-Werror",
            "-g",
        ])
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join("tests/c").join(format!("{name}.c")))
        .arg("-o")
        .arg(&out)
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lwsembed", "-lpthread"])
        .status()
        .expect("cc runs");
    assert!(status.success(), "compiling {name}.c failed");
    out
}

fn run(binary: &Path, url: &str) {
    run_with(binary, &[url]);
}

fn run_with(binary: &Path, args: &[&str]) {
    let url = args[0];
    let output = Command::new(binary).args(args).output().expect("runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} {url} failed: {stdout}{}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("OK"), "{stdout}");
}

struct PythonServer {
    child: Child,
    port: u16,
}

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python_server(extra: &[&Path]) -> PythonServer {
    let mut child = Command::new("python3")
        .arg(root().join("tests/servers/python_echo_server.py"))
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .strip_prefix("PORT ")
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "the Python websockets server did not start ({line:?}); \
                 install it with: python3 -m pip install -r tests/requirements.txt"
            )
        });
    PythonServer { child, port }
}

#[test]
fn c_echo_cycle_against_the_projects_server() {
    let binary = compile_c("echo_cycle");
    run(&binary, &echo_server().url());
}

#[test]
fn c_echo_cycle_against_python_websockets() {
    let binary = compile_c("echo_cycle");
    let server = python_server(&[]);
    run(&binary, &format!("ws://127.0.0.1:{}/", server.port));
}

/// wss:// against Python's `ssl` + `websockets`, with a private CA made
/// here and passed to the C program as a CA file.
#[cfg(feature = "tls")]
#[test]
fn c_echo_cycle_over_wss_against_python_websockets() {
    let dir = std::env::temp_dir().join(format!("wsembed-c-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let (ca, crt, pem_key) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    std::fs::write(&crt, cert.pem()).unwrap();
    std::fs::write(&pem_key, key.serialize_pem()).unwrap();

    let binary = compile_c("echo_cycle");
    let tls = Path::new("--tls");
    let server = python_server(&[tls, &crt, &pem_key]);
    let url = format!("wss://127.0.0.1:{}/", server.port);
    run_with(&binary, &[&url, ca.to_str().unwrap()]);
}
