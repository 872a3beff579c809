//! Readiness under load: sixteen services that begin to listen 0.3 to 2 s after
//! they start, started at once while two CPU burners run. No wait may return
//! before its service listened: each service records, from the kernel's clock
//! shared with the host, the moment before it starts listening.

mod common;

use std::process::{Child, Command};
use std::time::Duration;

use common::busybox;
use dockhand::{Container, WaitFor};

/// CPU burners (`yes > /dev/null`), killed when dropped, even on a panic.
struct Burners(Vec<Child>);

impl Burners {
    fn start(n: usize) -> Burners {
        Burners(
            (0..n)
                .map(|_| {
                    Command::new("sh")
                        .args(["-c", "exec yes > /dev/null"])
                        .spawn()
                        .unwrap()
                })
                .collect(),
        )
    }
}

impl Drop for Burners {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Seconds since boot, the clock the containers read from /proc/uptime too.
fn uptime() -> f64 {
    let text = std::fs::read_to_string("/proc/uptime").unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

/// A server that waits `delay` seconds, records the time, then listens.
async fn late_server(image: &str, delay: f64, http: bool) -> dockhand::Result<(f64, Option<f64>)> {
    let script = format!(
        "mkdir -p /www && echo up > /www/index.html; sleep {delay:.2}; \
         read up rest < /proc/uptime; echo $up > /tmp/listening; exec httpd -f -p 8080 -h /www"
    );
    let wait = if http {
        WaitFor::http(8080).into()
    } else {
        WaitFor::port(8080)
    };
    let c = Container::builder(image)
        .cmd(["sh", "-c", &script])
        .expose(8080)
        .wait_for(wait)
        .startup_timeout(Duration::from_secs(120))
        .start()
        .await?;
    let returned = uptime();
    // Nothing recorded yet: the service had not even begun to listen.
    let recorded = c.exec(["cat", "/tmp/listening"]).await?;
    Ok((returned, recorded.stdout_str().trim().parse().ok()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_late_listeners_under_load_are_never_reported_early() -> dockhand::Result<()> {
    let image = busybox().await?;
    let _burners = Burners::start(2);
    let servers = (0..16).map(|i| late_server(image, 0.3 + 1.7 * f64::from(i) / 15.0, i % 4 == 3));
    let results = futures_util::future::join_all(servers).await;
    for (i, result) in results.into_iter().enumerate() {
        let (returned, listening) = result?;
        let listening = listening
            .unwrap_or_else(|| panic!("server {i}: the wait returned before the service began to listen"));
        // /proc/uptime has centiseconds: equal means within the same 10 ms.
        assert!(
            returned >= listening,
            "server {i}: the wait returned at {returned}, before the service listened at {listening}"
        );
    }
    Ok(())
}
