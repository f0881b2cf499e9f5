//! The server under test, run as a child process of the benchmark: `sextant serve` from the
//! same executable, on free loopback ports, with its data in a directory of its own.
//!
//! The child gets these settings through `SEXTANT_*` variables, over anything inherited:
//! the four addresses, `storage.wal_fsync = true` (durable ingest is what is measured) and
//! `storage.retention = 3650d` (the workload spans past days and must not be deleted). Other
//! `SEXTANT_*` variables of the benchmark's environment pass through, so a setting can be
//! benchmarked by exporting it; the report lists them.
//!
//! Measures taken from outside, as an operator would: readiness (`GET /api/v1/services`
//! answers 200), resident and peak resident memory (`VmRSS`, `VmHWM` of `/proc/<pid>/status`;
//! the peak can be reset through `/proc/<pid>/clear_refs`), CPU time, `/metrics`,
//! and bytes on disk once the process has exited. The server logs warnings and errors to a
//! file (under load it warns about every refused request); an error of the benchmark about the
//! server quotes the end of that log. A dropped [`ServerProcess`] is killed.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::config::ADDRESS_VARIABLES;

use super::http::get_once;

/// The variables the benchmark sets itself besides the addresses ([`ADDRESS_VARIABLES`]);
/// others named `SEXTANT_*` pass through.
const OWN_VARIABLES: [&str; 3] = ["SEXTANT_STORAGE_WAL_FSYNC", "SEXTANT_STORAGE_RETENTION", "SEXTANT_DATA_DIR"];
const RETENTION: &str = "3650d";
const READY_POLL: Duration = Duration::from_millis(5);
/// Lines of the server's log quoted in an error.
const LOG_TAIL_LINES: usize = 20;
/// Opening a data directory replays its WAL first, which takes a while for large ones.
pub const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// A graceful stop flushes the head to a block first.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(600);

/// `SEXTANT_*` variables of this process that reach the server unchanged.
pub fn passed_through_settings() -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(name, _)| {
            name.starts_with("SEXTANT_")
                && !OWN_VARIABLES.contains(&name.as_str())
                && !ADDRESS_VARIABLES.contains(&name.as_str())
        })
        .collect();
    vars.sort();
    vars
}

pub struct ServerProcess {
    child: Child,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    pub grpc_address: SocketAddr,
    pub query_address: SocketAddr,
    pub tempo_address: SocketAddr,
}

/// Ports free right now on 127.0.0.1 (bound together, then released).
fn free_loopback_addresses(count: usize) -> std::io::Result<Vec<SocketAddr>> {
    let listeners = (0..count).map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0))).collect::<Result<Vec<_>, _>>()?;
    listeners.iter().map(|l| l.local_addr()).collect()
}

impl ServerProcess {
    /// Starts `executable serve` on `data_dir` with `settings` added to its environment, its
    /// log appended to `log_path`.
    pub fn spawn(
        executable: &Path,
        data_dir: &Path,
        log_path: &Path,
        settings: &[(&str, String)],
    ) -> anyhow::Result<ServerProcess> {
        let addresses = free_loopback_addresses(ADDRESS_VARIABLES.len()).context("finding free loopback ports")?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut command = Command::new(executable);
        command
            .args(["serve", "--log-level", "warn", "--data-dir"])
            .arg(data_dir)
            .envs(ADDRESS_VARIABLES.iter().zip(&addresses).map(|(name, address)| (name, address.to_string())))
            .env("SEXTANT_STORAGE_WAL_FSYNC", "true")
            .env("SEXTANT_STORAGE_RETENTION", RETENTION)
            .env("NO_COLOR", "1")
            .envs(settings.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = command.spawn().with_context(|| format!("starting {} serve", executable.display()))?;
        Ok(ServerProcess {
            child,
            data_dir: data_dir.to_path_buf(),
            log_path: log_path.to_path_buf(),
            grpc_address: addresses[0],
            query_address: addresses[3],
            tempo_address: addresses[4],
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until the query API answers, which it does once the WAL has been replayed.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok((200, _)) = get_once(self.query_address, "/api/v1/services", HTTP_TIMEOUT).await {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("the server exited before it was ready: {status}{}", self.log_tail());
            }
            if Instant::now() > deadline {
                bail!("the server did not answer on {} within {timeout:?}{}", self.query_address, self.log_tail());
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    /// The body of `GET /metrics`.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        match get_once(self.query_address, "/metrics", HTTP_TIMEOUT).await? {
            (200, body) => Ok(body),
            (status, body) => bail!("GET /metrics answered {status}: {body}"),
        }
    }

    /// The most resident memory the process has used so far (since [`Self::reset_peak_rss`]).
    pub fn peak_rss_bytes(&self) -> anyhow::Result<u64> {
        self.status_bytes("VmHWM:")
    }

    /// The resident memory of the process now.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        self.status_bytes("VmRSS:")
    }

    /// Restarts the peak of [`Self::peak_rss_bytes`] from the current resident memory
    /// (`5` written to `/proc/<pid>/clear_refs`, Linux 4.0 and later).
    pub fn reset_peak_rss(&self) -> anyhow::Result<()> {
        let path = format!("/proc/{}/clear_refs", self.pid());
        std::fs::write(&path, "5").with_context(|| format!("writing {path}"))
    }

    fn status_bytes(&self, field: &str) -> anyhow::Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        parse_status_bytes(&status, field).with_context(|| format!("no {field} line in {path}"))
    }

    /// The last lines of the server's log, for an error message; empty if there are none.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            return String::new();
        }
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        format!("\nthe server's log ends with:\n{tail}")
    }

    /// User plus system CPU time the process has used so far, all threads.
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        process_cpu_seconds(&self.pid().to_string())
    }

    /// SIGTERM, then waits for the exit: the server flushes its head to a block first.
    pub async fn stop(mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let sent = Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().context("running kill")?;
        if !sent.success() {
            bail!("kill -TERM {} failed: {sent}", self.pid());
        }
        let status = self.wait(STOP_TIMEOUT).await?;
        if !status.success() {
            bail!("the server exited with {status} after SIGTERM{}", self.log_tail());
        }
        Ok(started.elapsed())
    }

    /// SIGKILL: the head is lost from memory, the WAL holds every acknowledged span.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.kill().context("killing the server")?;
        self.wait(STOP_TIMEOUT).await?;
        Ok(())
    }

    async fn wait(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!("the server did not exit within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `VmHWM:     123456 kB` → bytes.
pub fn parse_vm_hwm_bytes(proc_status: &str) -> Option<u64> {
    parse_status_bytes(proc_status, "VmHWM:")
}

/// The value in bytes of the `field` (with its colon) line of `/proc/<pid>/status`, in kB there.
fn parse_status_bytes(proc_status: &str, field: &str) -> Option<u64> {
    let line = proc_status.lines().find(|line| line.starts_with(field))?;
    let kib: u64 = line[field.len()..].trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

/// Clock ticks per second of `/proc/<pid>/stat` times: `USER_HZ`, 100 on every Linux ABI.
const USER_HZ: f64 = 100.0;

/// User plus system CPU time of process `pid` (a number or `self`), from `/proc/<pid>/stat`.
pub fn process_cpu_seconds(pid: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_cpu_seconds(&stat).with_context(|| format!("no CPU times in {path}"))
}

/// Fields 14 and 15 (utime, stime) of a `/proc/<pid>/stat` line, counted after the command
/// name, which is in parentheses and may itself hold spaces and parentheses.
fn parse_stat_cpu_seconds(stat: &str) -> Option<f64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// The sum of the sizes of the files under `path` (0 if it does not exist); symlinks not followed.
pub fn dir_size_bytes(path: &Path) -> std::io::Result<u64> {
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    if !metadata.is_dir() {
        return Ok(if metadata.is_file() { metadata.len() } else { 0 });
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        total += dir_size_bytes(&entry?.path())?;
    }
    Ok(total)
}

/// Answers of the readiness and `/metrics` requests must come within this.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// The value of the first sample whose line starts with `name` followed by a space, or `{`.
pub fn metric_value(metrics_text: &str, name: &str) -> Option<f64> {
    metrics_text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{'])))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_peak_rss_from_proc_status() {
        let status = "Name:\tsextant\nVmPeak:\t  900 kB\nVmHWM:\t   51234 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(parse_vm_hwm_bytes(status), Some(51234 * 1024));
        assert_eq!(parse_vm_hwm_bytes("Name:\tx\n"), None);
        assert_eq!(parse_status_bytes(status, "VmRSS:"), Some(40000 * 1024));
        let own = std::fs::read_to_string("/proc/self/status").unwrap();
        assert!(parse_vm_hwm_bytes(&own).unwrap() > 0);
    }

    #[test]
    fn reads_cpu_times_from_proc_stat() {
        let stat = "4242 (my (odd) name) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 75 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_stat_cpu_seconds(stat), Some(3.25));
        assert_eq!(parse_stat_cpu_seconds("4242 (x) S 1"), None);
        assert!(process_cpu_seconds("self").unwrap() >= 0.0);
    }

    #[test]
    fn finds_metric_samples_by_exact_name() {
        let text = "# HELP sextant_wal_replayed_spans Spans\n\
                    sextant_wal_replayed_spans_total_other 9\n\
                    sextant_wal_replayed_spans_total 12345\n\
                    sextant_ingested_spans_total{protocol=\"otlp_grpc\"} 7\n";
        assert_eq!(metric_value(text, "sextant_wal_replayed_spans_total"), Some(12345.0));
        assert_eq!(metric_value(text, "sextant_ingested_spans_total"), Some(7.0));
        assert_eq!(metric_value(text, "sextant_missing"), None);
    }

    #[test]
    fn sizes_files_recursively() {
        let dir = std::env::temp_dir().join(format!("sextant-bench-size-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("one"), [0u8; 10]).unwrap();
        std::fs::write(dir.join("a/b/two"), [0u8; 32]).unwrap();
        assert_eq!(dir_size_bytes(&dir).unwrap(), 42);
        assert_eq!(dir_size_bytes(&dir.join("missing")).unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
