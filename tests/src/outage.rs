//! Outages on demand: a LocalStack of the test's own, stopped and started with `infra/stack.sh`
//! (so other tests keep theirs), and a TCP proxy in front of it that can refuse connections.
//!
//! LocalStack keeps its state in memory, so after a restart the test creates its resources again.
//! Until it has, LocalStack would accept PutEvents for a bus that does not exist yet and drop
//! them (real EventBridge answers ResourceNotFound), so the proxy keeps the publisher out until
//! then: to the publisher the outage lasts from the stop until the resources are back.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

fn stack_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/stack.sh")
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for a test).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port()
}

/// One service of the local stack run by this test alone; stopped when dropped.
pub struct OwnService {
    name: &'static str,
    state: PathBuf,
    pub port: u16,
    /// Extra environment for `infra/stack.sh` (e.g. `DDB_PERSIST=1`).
    env: Vec<(&'static str, &'static str)>,
}

impl OwnService {
    /// Starts `name` (`"localstack"` or `"dynamodb"`) on a free port and waits until it answers.
    pub fn start(name: &'static str) -> Self {
        Self::start_with(name, &[])
    }

    /// Starts it with extra environment for `infra/stack.sh`: `("DDB_PERSIST", "1")` keeps
    /// DynamoDB Local's data in files of the state directory, so it survives a kill.
    pub fn start_with(name: &'static str, env: &[(&'static str, &'static str)]) -> Self {
        let state = std::env::temp_dir().join(format!("inventory-{name}-{}", uuid::Uuid::new_v4().simple()));
        let service = OwnService { name, state, port: free_port(), env: env.to_vec() };
        service.up();
        service
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts it again on the same port (after [`OwnService::down`]).
    pub fn up(&self) {
        self.run(&["start-one", self.name, self.state.to_str().expect("utf-8 path"), &self.port.to_string()]);
    }

    pub fn down(&self) {
        self.run(&["stop-one", self.name, self.state.to_str().expect("utf-8 path")]);
    }

    /// Kills it at once (SIGKILL: no shutdown, no flush).
    pub fn kill(&self) {
        self.run(&["kill-one", self.name, self.state.to_str().expect("utf-8 path")]);
    }

    fn run(&self, args: &[&str]) {
        let out = Command::new("bash")
            .arg(stack_script())
            .args(args)
            .envs(self.env.iter().copied())
            .output()
            .expect("run infra/stack.sh");
        assert!(
            out.status.success(),
            "infra/stack.sh {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnService {
    fn drop(&mut self) {
        self.down();
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// A TCP proxy from a local port to `target`; while closed, it drops every connection at once
/// (as a stopped service would refuse it).
pub struct GatedProxy {
    pub port: u16,
    open: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl GatedProxy {
    pub async fn start(target_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let open = Arc::new(AtomicBool::new(true));
        let gate = open.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !gate.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection close
                }
                tokio::spawn(async move {
                    if let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", target_port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        GatedProxy { port, open, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::SeqCst);
    }
}

impl Drop for GatedProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
