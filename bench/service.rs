//! docconv started the way it is deployed: its own process, on free ports;
//! and the NATS server its cluster mode shares jobs through.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Service {
    child: Child,
    pub grpc: SocketAddr,
    pub http: Option<SocketAddr>,
    data_dir: PathBuf,
    started: Instant,
    /// Whether the data directory goes with the service.
    owns_data: bool,
}

impl Service {
    /// `docconv converter`, or `docconv serve` (converter and gateway) when
    /// `with_gateway`.
    pub fn start(exe: &Path, work: &Path, name: &str, with_gateway: bool, args: &[&str]) -> Result<Service, String> {
        let data_dir = work.join(name);
        let _ = std::fs::remove_dir_all(&data_dir);
        Service::spawn(exe, data_dir, with_gateway, args, true)
    }

    /// `docconv converter` on `data_dir` as an earlier run left it: a
    /// restart. The directory stays when this one stops.
    pub fn restart(exe: &Path, data_dir: &Path, args: &[&str]) -> Result<Service, String> {
        Service::spawn(exe, data_dir.to_path_buf(), false, args, false)
    }

    fn spawn(
        exe: &Path,
        data_dir: PathBuf,
        with_gateway: bool,
        args: &[&str],
        owns_data: bool,
    ) -> Result<Service, String> {
        let grpc: SocketAddr = format!("127.0.0.1:{}", super::system::free_port()).parse().unwrap();
        let http: Option<SocketAddr> =
            with_gateway.then(|| format!("127.0.0.1:{}", super::system::free_port()).parse().unwrap());
        let mut command = Command::new(exe);
        match http {
            Some(http) => {
                command.args(["serve", "--grpc-listen", &grpc.to_string(), "--http-listen", &http.to_string()])
            }
            None => command.args(["converter", "--listen", &grpc.to_string()]),
        };
        let started = Instant::now();
        let child = command
            .arg("--data-dir")
            .arg(&data_dir)
            .args(args)
            .env("DOCCONV_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start docconv: {e}"))?;
        Ok(Service { child, grpc, http, data_dir, started, owns_data })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for grpc.health.v1 to say SERVING; returns the time since start.
    pub async fn wait_ready(&self) -> Result<Duration, String> {
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let channel = tonic::transport::Channel::from_shared(format!("http://{}", self.grpc)).unwrap();
            if let Ok(channel) = channel.connect().await {
                let reply = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await;
                if reply.is_ok_and(|r| r.into_inner().status == 1) {
                    return Ok(self.started.elapsed());
                }
            }
            if Instant::now() > deadline {
                return Err("docconv never became ready".into());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Stops it (SIGSTOP) until `resume`: it answers nothing, and asks
    /// for no job.
    pub fn pause(&self) {
        self.signal(rustix::process::Signal::STOP);
    }

    pub fn resume(&self) {
        self.signal(rustix::process::Signal::CONT);
    }

    fn signal(&self, signal: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }

    /// Kills it at once (SIGKILL), as a crash or a power cut would; its
    /// workers die with it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `nats-server` with JetStream, on a free port, keeping its data under
/// the benchmark's folder: cluster-mode converters given its `url` share
/// one job space.
pub struct Nats {
    child: Child,
    pub url: String,
    dir: PathBuf,
}

impl Nats {
    pub async fn start(work: &Path) -> Result<Nats, String> {
        let port = super::system::free_port();
        let dir = work.join("nats");
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start nats-server (scripts/bench installs it): {e}"))?;
        let nats = Nats { child, url: format!("nats://127.0.0.1:{port}"), dir };
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        listening(address, Duration::from_secs(10), "nats-server").await?;
        Ok(nats)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits until something accepts connections on `address`, for up to
/// `limit`; `what` names it in the error.
async fn listening(address: SocketAddr, limit: Duration, what: &str) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while tokio::net::TcpStream::connect(address).await.is_err() {
        if Instant::now() > deadline {
            return Err(format!("{what} never listened"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// `docconv gateway` in a process of its own, in front of `converter`, so
/// its memory can be read apart from the converter's.
pub struct Gateway {
    child: Child,
    pub http: SocketAddr,
}

impl Gateway {
    pub async fn start(exe: &Path, converter: SocketAddr) -> Result<Gateway, String> {
        let http: SocketAddr = format!("127.0.0.1:{}", super::system::free_port()).parse().unwrap();
        let child = Command::new(exe)
            .args(["gateway", "--listen", &http.to_string(), "--converter-url", &format!("http://{converter}")])
            .env("DOCCONV_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the gateway: {e}"))?;
        let gateway = Gateway { child, http };
        listening(http, Duration::from_secs(30), "the gateway").await?;
        Ok(gateway)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    /// Stops it as an operator would (SIGTERM), so that the next start on
    /// the same data directory (restarts measure that) finds its job store
    /// closed cleanly; killed if it takes longer than an idle service
    /// should.
    fn drop(&mut self) {
        self.signal(rustix::process::Signal::TERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        // Workers die with their parent (PR_SET_PDEATHSIG).
        self.kill();
        if self.owns_data {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}
