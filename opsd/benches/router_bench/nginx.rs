//! nginx as the router benchmark's reference proxy: found on the machine, configured in a temp
//! dir (one worker, keep-alive connections to the same Steno process), run as a child process
//! that is stopped when its guard is dropped, also when the benchmark panics.

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long nginx may take to accept connections after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(5);
/// How long nginx may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
/// Idle connections each nginx worker keeps open to Steno.
const UPSTREAM_KEEPALIVE: usize = 32;

/// The nginx binary on `PATH` or in `/usr/sbin` (Debian's place, not on a non-root `PATH`).
pub fn find_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .map(|dir| dir.join("nginx"))
        .chain(std::iter::once(PathBuf::from("/usr/sbin/nginx")))
        .find(|candidate| candidate.is_file())
}

/// A running nginx in front of one upstream. Dropping it stops nginx and removes its temp dir.
pub struct Nginx {
    child: Child,
    address: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts `binary` listening on a free loopback port, proxying everything to `upstream`.
    pub async fn start(binary: &Path, upstream: SocketAddr) -> Result<Nginx, String> {
        let dir =
            tempfile::tempdir().map_err(|error| format!("create nginx's temp dir: {error}"))?;
        let address = free_loopback_address()?;
        let config_path = dir.path().join("nginx.conf");
        let config = config(dir.path(), address, upstream, running_as_root());
        std::fs::write(&config_path, config)
            .map_err(|error| format!("write {}: {error}", config_path.display()))?;
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&config_path)
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .map_err(|error| format!("start {}: {error}", binary.display()))?;
        let mut nginx = Nginx {
            child,
            address,
            dir,
        };
        nginx.wait_until_listening().await?;
        Ok(nginx)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    async fn wait_until_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "nginx exited with {status} before it listened: {}",
                    self.error_log()
                ));
            }
            if tokio::net::TcpStream::connect(self.address).await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nginx did not listen on {} within {} s: {}",
                    self.address,
                    START_TIMEOUT.as_secs(),
                    self.error_log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log"))
            .unwrap_or_else(|error| format!("(no error log: {error})"))
    }
}

impl Drop for Nginx {
    /// SIGTERM lets the master stop its worker too; SIGKILL only if it does not within 3 s.
    fn drop(&mut self) {
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: `kill` has no memory effects; the pid is our own child, not yet reaped.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback address with a port free at the time of asking.
fn free_loopback_address() -> Result<SocketAddr, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|error| format!("find a free loopback port: {error}"))
}

fn running_as_root() -> bool {
    // SAFETY: `geteuid` cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}

/// The whole configuration: everything nginx writes stays in `dir`. The proxy does what opsd's
/// router does to a request (client's `Host` kept, `X-Forwarded-For` appended, HTTP/1.1 with
/// kept-alive upstream connections) and logs no requests.
fn config(dir: &Path, listen: SocketAddr, upstream: SocketAddr, as_root: bool) -> String {
    let dir = dir.display();
    let mut config = String::new();
    if as_root {
        // Otherwise the worker runs as `nobody` and cannot open the temp dir.
        config.push_str("user root;\n");
    }
    let _ = write!(
        config,
        "worker_processes 1;
pid \"{dir}/nginx.pid\";
error_log \"{dir}/error.log\" warn;

events {{
    worker_connections 1024;
}}

http {{
    access_log off;
    client_body_temp_path \"{dir}/client_body\";
    proxy_temp_path \"{dir}/proxy\";
    fastcgi_temp_path \"{dir}/fastcgi\";
    uwsgi_temp_path \"{dir}/uwsgi\";
    scgi_temp_path \"{dir}/scgi\";

    upstream steno {{
        server {upstream};
        keepalive {UPSTREAM_KEEPALIVE};
    }}

    server {{
        listen {listen};
        location / {{
            proxy_pass http://steno;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
    }}
}}
"
    );
    config
}
