//! What a running container costs: [`Container::stats`] and
//! [`Container::stats_stream`], figured the way `docker stats` figures them.
//!
//! - CPU percent: the container's CPU time over the host's in the same
//!   interval, times the CPUs online (so one busy core on a 2-core host is
//!   100 %, both are 200 %).
//! - Memory used: the cgroup's usage less its inactive page cache
//!   (`total_inactive_file` on cgroup v1, `inactive_file` on v2), as the CLI
//!   shows it.
//! - Block I/O: the service bytes of every device, read and write summed.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::StatsOptions;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt};

use crate::container::{describe_state, Container};
use crate::error::{Error, Result};

/// One reading of a container's resource use.
///
/// ```no_run
/// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
/// let stats = c.stats().await?;
/// println!(
///     "cpu {:.1} %, memory {} of {} bytes, rx {} tx {}, {} pids",
///     stats.cpu_percent, stats.memory_used, stats.memory_limit,
///     stats.rx_bytes(), stats.tx_bytes(), stats.pids
/// );
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// CPU use over the last interval, in percent of one CPU (up to
    /// `100 × online_cpus`).
    pub cpu_percent: f64,
    /// CPUs the host has online, as the engine counts them.
    pub online_cpus: u32,
    /// Memory in use, without the page cache the kernel can drop.
    pub memory_used: u64,
    /// The container's memory limit; the host's memory when it has none.
    pub memory_limit: u64,
    /// Bytes and packets per network interface (`eth0`, ...).
    pub networks: BTreeMap<String, NetworkIo>,
    /// Bytes read from block devices.
    pub block_read: u64,
    /// Bytes written to block devices.
    pub block_write: u64,
    /// Processes and threads in the container.
    pub pids: u64,
}

/// Traffic of one network interface since the container started.
///
/// ```
/// let io = dockhand::NetworkIo::default();
/// assert_eq!(io.rx_bytes + io.tx_bytes, 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkIo {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Packets sent.
    pub tx_packets: u64,
}

impl Stats {
    /// Bytes received over every interface.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// assert!(c.stats().await?.rx_bytes() > 0);
    /// # Ok(()) }
    /// ```
    pub fn rx_bytes(&self) -> u64 {
        self.networks.values().map(|n| n.rx_bytes).sum()
    }

    /// Bytes sent over every interface.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// println!("{} bytes out", c.stats().await?.tx_bytes());
    /// # Ok(()) }
    /// ```
    pub fn tx_bytes(&self) -> u64 {
        self.networks.values().map(|n| n.tx_bytes).sum()
    }

    /// Memory used in percent of the limit.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// assert!(c.stats().await?.memory_percent() < 100.0);
    /// # Ok(()) }
    /// ```
    pub fn memory_percent(&self) -> f64 {
        if self.memory_limit == 0 {
            return 0.0;
        }
        self.memory_used as f64 / self.memory_limit as f64 * 100.0
    }

    /// The figures of one engine reading; `pre` is the reading before it when
    /// the engine left its own out (the first of a stream). `None` when the
    /// reading is empty: the engine sends those for a container that is not
    /// running.
    fn from_engine(now: &ContainerStatsResponse, pre: Option<&ContainerStatsResponse>) -> Option<Stats> {
        let cpu = now.cpu_stats.as_ref()?;
        cpu.system_cpu_usage.filter(|s| *s > 0)?;
        let memory = now.memory_stats.as_ref().filter(|m| m.usage.is_some())?;
        let total = |s: &ContainerStatsResponse| {
            s.cpu_stats
                .as_ref()
                .and_then(|c| Some((c.cpu_usage.as_ref()?.total_usage?, c.system_cpu_usage?)))
        };
        let own_pre = now
            .precpu_stats
            .as_ref()
            .filter(|_| has_own_pre(now))
            .and_then(|c| Some((c.cpu_usage.as_ref()?.total_usage?, c.system_cpu_usage?)));
        let online_cpus = cpu
            .online_cpus
            .filter(|n| *n > 0)
            .or_else(|| {
                let per_cpu = cpu.cpu_usage.as_ref()?.percpu_usage.as_ref()?;
                u32::try_from(per_cpu.len()).ok()
            })
            .unwrap_or(1);
        let cpu_percent = match (total(now), own_pre.or_else(|| pre.and_then(total))) {
            (Some((used, system)), Some((pre_used, pre_system))) if system > pre_system => {
                let used = used.saturating_sub(pre_used) as f64;
                used / (system - pre_system) as f64 * f64::from(online_cpus) * 100.0
            }
            _ => 0.0,
        };
        let usage = memory.usage.unwrap_or(0);
        let cache = memory
            .stats
            .as_ref()
            .and_then(|s| s.get("total_inactive_file").or_else(|| s.get("inactive_file")))
            .copied()
            .filter(|c| *c < usage)
            .unwrap_or(0);
        let networks = now
            .networks
            .iter()
            .flatten()
            .map(|(name, n)| {
                let io = NetworkIo {
                    rx_bytes: n.rx_bytes.unwrap_or(0),
                    tx_bytes: n.tx_bytes.unwrap_or(0),
                    rx_packets: n.rx_packets.unwrap_or(0),
                    tx_packets: n.tx_packets.unwrap_or(0),
                };
                (name.clone(), io)
            })
            .collect();
        let (mut block_read, mut block_write) = (0, 0);
        let entries = now
            .blkio_stats
            .as_ref()
            .and_then(|b| b.io_service_bytes_recursive.as_ref());
        for entry in entries.into_iter().flatten() {
            let value = entry.value.unwrap_or(0);
            match entry.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("read") => block_read += value,
                Some("write") => block_write += value,
                _ => {}
            }
        }
        Some(Stats {
            cpu_percent,
            online_cpus,
            memory_used: usage - cache,
            memory_limit: memory.limit.unwrap_or(0),
            networks,
            block_read,
            block_write,
            pids: now.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
        })
    }
}

impl Container {
    /// One reading of what the container uses now. The engine measures CPU
    /// over about a second, so this takes that long. A container that is not
    /// running is an error ([`Error::NotRunning`]), not a reading of zeros.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// let stats = c.stats().await?;
    /// assert!(stats.cpu_percent < 10.0, "idle, but {:.1} %", stats.cpu_percent);
    /// # Ok(()) }
    /// ```
    pub async fn stats(&self) -> Result<Stats> {
        self.ensure_running("read stats of").await?;
        let options = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let mut readings = self.docker().stats(self.id(), Some(options));
        match readings.next().await {
            Some(Ok(reading)) => match Stats::from_engine(&reading, None) {
                Some(stats) => Ok(stats),
                None => Err(self.not_running("read stats of").await),
            },
            Some(Err(err)) => Err(Error::engine("read stats of", self.describe(), err)),
            None => Err(self.not_running("read stats of").await),
        }
    }

    /// Readings once a second while the container runs. The stream ends with
    /// [`Error::NotRunning`] when the container stops, or an engine error when
    /// the engine drops it.
    ///
    /// ```no_run
    /// # async fn demo(c: &dockhand::Container) -> dockhand::Result<()> {
    /// use futures_util::StreamExt;
    /// let mut readings = c.stats_stream().await?;
    /// while let Some(stats) = readings.next().await {
    ///     println!("{:.1} % CPU", stats?.cpu_percent);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn stats_stream(&self) -> Result<StatsStream> {
        self.ensure_running("follow stats of").await?;
        let options = StatsOptions {
            stream: true,
            one_shot: false,
        };
        Ok(StatsStream {
            inner: Some(self.docker().stats(self.id(), Some(options)).boxed()),
            previous: None,
            resource: self.describe(),
        })
    }

    async fn ensure_running(&self, operation: &'static str) -> Result<()> {
        let state = self.inspect().await?.state;
        match state.as_ref().and_then(|s| s.running) {
            Some(true) => Ok(()),
            _ => Err(Error::NotRunning {
                operation,
                resource: self.describe(),
                state: describe_state(state.as_ref()),
            }),
        }
    }

    async fn not_running(&self, operation: &'static str) -> Error {
        let state = match self.inspect().await {
            Ok(inspected) => describe_state(inspected.state.as_ref()),
            Err(err) => return err,
        };
        Error::NotRunning {
            operation,
            resource: self.describe(),
            state,
        }
    }
}

/// Readings of a container's resource use, one a second; from
/// [`Container::stats_stream`].
pub struct StatsStream {
    inner: Option<BoxStream<'static, std::result::Result<ContainerStatsResponse, bollard::errors::Error>>>,
    previous: Option<ContainerStatsResponse>,
    resource: String,
}

impl std::fmt::Debug for StatsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsStream")
            .field("container", &self.resource)
            .finish()
    }
}

impl Stream for StatsStream {
    type Item = Result<Stats>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            let Some(inner) = this.inner.as_mut() else {
                return Poll::Ready(None);
            };
            let reading = match inner.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(reading))) => reading,
                Poll::Ready(Some(Err(err))) => {
                    this.inner = None;
                    let err = Error::engine("follow stats of", this.resource.clone(), err);
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => {
                    this.inner = None;
                    return Poll::Ready(None);
                }
            };
            // The engine's first reading has no earlier one to measure CPU
            // against: it only starts the interval, rather than showing 0 %.
            if this.previous.is_none()
                && !has_own_pre(&reading)
                && Stats::from_engine(&reading, None).is_some()
            {
                this.previous = Some(reading);
                continue;
            }
            let stats = Stats::from_engine(&reading, this.previous.as_ref());
            this.previous = Some(reading);
            return Poll::Ready(Some(match stats {
                Some(stats) => Ok(stats),
                None => {
                    this.inner = None;
                    Err(Error::NotRunning {
                        operation: "follow stats of",
                        resource: this.resource.clone(),
                        state: "stopped while followed".into(),
                    })
                }
            }));
        }
    }
}

/// Whether the engine sent the earlier CPU reading with this one.
fn has_own_pre(reading: &ContainerStatsResponse) -> bool {
    reading
        .precpu_stats
        .as_ref()
        .and_then(|c| c.system_cpu_usage)
        .is_some_and(|s| s > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        ContainerBlkioStatEntry, ContainerBlkioStats, ContainerCpuStats, ContainerCpuUsage,
        ContainerMemoryStats, ContainerNetworkStats, ContainerPidsStats,
    };
    use std::collections::HashMap;

    fn cpu(total: u64, system: u64) -> ContainerCpuStats {
        ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage {
                total_usage: Some(total),
                percpu_usage: Some(vec![0, 0]),
                ..Default::default()
            }),
            system_cpu_usage: Some(system),
            online_cpus: None,
            ..Default::default()
        }
    }

    fn reading(total: u64, system: u64, cache_key: &str) -> ContainerStatsResponse {
        ContainerStatsResponse {
            cpu_stats: Some(cpu(total, system)),
            precpu_stats: Some(cpu(1_000, 10_000)),
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(100 << 20),
                limit: Some(64 << 20),
                stats: Some(HashMap::from([(cache_key.to_string(), 30 << 20)])),
                ..Default::default()
            }),
            networks: Some(HashMap::from([(
                "eth0".to_string(),
                ContainerNetworkStats {
                    rx_bytes: Some(500),
                    tx_bytes: Some(70),
                    ..Default::default()
                },
            )])),
            blkio_stats: Some(ContainerBlkioStats {
                io_service_bytes_recursive: Some(vec![
                    ContainerBlkioStatEntry {
                        op: Some("Read".into()),
                        value: Some(4096),
                        ..Default::default()
                    },
                    ContainerBlkioStatEntry {
                        op: Some("write".into()),
                        value: Some(8192),
                        ..Default::default()
                    },
                    ContainerBlkioStatEntry {
                        op: Some("Total".into()),
                        value: Some(12288),
                        ..Default::default()
                    },
                ]),
                ..Default::default()
            }),
            pids_stats: Some(ContainerPidsStats {
                current: Some(3),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn figures_as_the_docker_cli_makes_them() {
        // Half the host's CPU time over the interval on 2 CPUs: 100 %.
        let stats = Stats::from_engine(&reading(6_000, 20_000, "total_inactive_file"), None).unwrap();
        assert!((stats.cpu_percent - 100.0).abs() < 1e-9, "{}", stats.cpu_percent);
        assert_eq!(stats.online_cpus, 2);
        assert_eq!(stats.memory_used, 70 << 20, "page cache is not use");
        assert_eq!(stats.memory_limit, 64 << 20);
        assert_eq!((stats.rx_bytes(), stats.tx_bytes()), (500, 70));
        assert_eq!((stats.block_read, stats.block_write, stats.pids), (4096, 8192, 3));
        // cgroup v2 names the cache differently.
        let v2 = Stats::from_engine(&reading(6_000, 20_000, "inactive_file"), None).unwrap();
        assert_eq!(v2.memory_used, 70 << 20);
    }

    #[test]
    fn a_reading_without_its_own_pre_uses_the_previous_one() {
        let mut first = reading(6_000, 20_000, "inactive_file");
        first.precpu_stats = Some(ContainerCpuStats::default());
        assert_eq!(Stats::from_engine(&first, None).unwrap().cpu_percent, 0.0);
        let mut second = reading(6_500, 21_000, "inactive_file");
        second.precpu_stats = None;
        let stats = Stats::from_engine(&second, Some(&first)).unwrap();
        assert!((stats.cpu_percent - 100.0).abs() < 1e-9, "{}", stats.cpu_percent);
    }

    #[test]
    fn an_empty_reading_is_no_reading() {
        // What the engine sends for a stopped container.
        let empty = ContainerStatsResponse {
            cpu_stats: Some(ContainerCpuStats::default()),
            memory_stats: Some(ContainerMemoryStats::default()),
            ..Default::default()
        };
        assert_eq!(Stats::from_engine(&empty, None), None);
    }
}
