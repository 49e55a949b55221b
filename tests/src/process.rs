//! The `hookline` binary as a separate process (for signals, kills, CLI
//! commands and several processes on one database).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Path of the CLI binary cargo builds next to the test executables
/// (`target/<profile>/hookline-e2e`; tests run from `target/<profile>/deps`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile> directory");
    let path = profile_dir.join("hookline-e2e");
    assert!(
        path.exists(),
        "{} is missing: run the tests with cargo",
        path.display()
    );
    path
}

/// Output of a finished CLI command.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The environment a CLI command needs to open a test server's database:
/// the servers' secret key (see `server.rs`).
pub fn cli_env() -> HashMap<String, String> {
    HashMap::from([(
        "HOOKLINE_SECRET_KEY".to_string(),
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=".to_string(),
    )])
}

/// Runs `hookline replay <args> --database-url <url>` with [`cli_env`].
pub async fn replay(url: &str, args: &[&str]) -> Output {
    let args = [&["replay"], args, &["--database-url", url]].concat();
    run_cli(&args, &cli_env()).await
}

/// How long a CLI command may take before its test fails (and the
/// command is killed) rather than hanging the suite.
const CLI_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Runs `hookline <args>` to completion.
pub async fn run_cli(args: &[&str], env: &HashMap<String, String>) -> Output {
    let run = Command::new(binary())
        .args(args)
        .envs(env)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(CLI_TIMEOUT, run)
        .await
        .unwrap_or_else(|_| panic!("hookline {args:?} did not finish in {CLI_TIMEOUT:?}"))
        .expect("run hookline");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running `hookline serve`.
pub struct ServerProcess {
    pub child: Child,
    pub address: Option<SocketAddr>,
    pub logs: Arc<Mutex<String>>,
}

impl ServerProcess {
    /// Starts `hookline serve <args>` and waits until it listens (or, for a
    /// worker, until it says it runs).
    pub async fn start(args: &[&str], env: &HashMap<String, String>, data_dir: &Path) -> Self {
        Self::start_under(&[], args, env, data_dir).await
    }

    /// As [`ServerProcess::start`], run by `wrapper` (a command and its
    /// arguments, before the binary: `unshare --pid --fork …`).
    pub async fn start_under(
        wrapper: &[&str],
        args: &[&str],
        env: &HashMap<String, String>,
        data_dir: &Path,
    ) -> Self {
        let mut command = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(binary());
                c
            }
            None => Command::new(binary()),
        };
        let mut child = command
            .arg("serve")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .envs(env)
            .env_remove("DATABASE_URL")
            .env(
                "RUST_LOG",
                env.get("RUST_LOG").map_or("info", String::as_str),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn hookline serve");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Option<SocketAddr>>();
        let sink = logs.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut ready = Some(ready_tx);
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Hookline is listening") {
                    let addr = if line.starts_with('{') {
                        serde_json::from_str::<serde_json::Value>(&line)
                            .ok()
                            .and_then(|v| v["address"].as_str().and_then(|a| a.parse().ok()))
                    } else {
                        line.split("address=")
                            .nth(1)
                            .and_then(|rest| rest.split_whitespace().next())
                            .and_then(|a| a.trim_matches('"').parse().ok())
                    };

                    if let Some(tx) = ready.take() {
                        let _ = tx.send(addr);
                    }
                } else if line.contains("worker running") {
                    if let Some(tx) = ready.take() {
                        let _ = tx.send(None);
                    }
                }
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let address = match tokio::time::timeout(Duration::from_secs(60), ready_rx).await {
            Ok(Ok(addr)) => addr,
            _ => {
                let _ = child.start_kill();
                panic!(
                    "hookline serve did not start; logs:\n{}",
                    logs.lock().unwrap()
                );
            }
        };
        Self {
            child,
            address,
            logs,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address.expect("an API process"))
    }

    /// Sends a signal (by number) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running");
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its exit code.
    pub async fn wait(&mut self, timeout: Duration) -> Option<i32> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            _ => panic!("hookline did not exit in time; logs:\n{}", self.logs()),
        }
    }

    /// The process's resident memory now and at its peak, in bytes (from
    /// `/proc/<pid>/status`).
    pub fn memory(&self) -> (u64, u64) {
        let pid = self.child.id().expect("running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
                .expect("a memory field")
                * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }
}
