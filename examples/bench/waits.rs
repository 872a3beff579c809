//! How fast a wait notices a service that begins to listen: the time from the
//! moment the service starts listening to the moment the wait returns, for
//! dockhand's port and HTTP waits and for a plain loop of raw calls doing the
//! same check (a connect to the container's own address, or a GET through the
//! published port, every millisecond). The service stamps the time (busybox
//! `adjtimex`, microseconds, the host's clock) just before it execs its server,
//! which binds a moment later: both sides carry that same small offset.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dockhand::{Container, WaitFor};

use crate::{raw, report_distribution, settle, Bench};

/// Waits `delay` seconds, stamps the time, then serves HTTP on 8080.
fn script(delay: f64) -> String {
    format!(
        "mkdir -p /www && echo up > /www/index.html; sleep {delay}; \
         adjtimex | grep time.tv_ > /tmp/t; exec httpd -f -p 8080 -h /www"
    )
}

fn now_us() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1e6
}

/// The stamp `script` left, in microseconds.
fn stamp(text: &str) -> f64 {
    let field = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .expect("adjtimex stamp")
    };
    field("time.tv_sec:") * 1e6 + field("time.tv_usec:")
}

pub async fn detect(bench: &Bench) -> dockhand::Result<()> {
    for (workload, delay, http) in [
        ("port_detect", 0.0, false),
        ("port_detect_late", 0.3, false),
        ("http_detect", 0.0, true),
        ("http_detect_late", 0.3, true),
    ] {
        let (mut d, mut b) = (Vec::new(), Vec::new());
        for _ in 0..bench.runs(workload, 20) {
            d.push(dockhand_detect(bench.image, delay, http).await?);
            settle();
            b.push(plain_detect(bench, delay, http).await);
        }
        report_distribution(workload, &d, &b);
    }
    Ok(())
}

/// Milliseconds from the service's stamp to dockhand's wait returning.
async fn dockhand_detect(image: &str, delay: f64, http: bool) -> dockhand::Result<f64> {
    let wait = if http {
        WaitFor::http(8080).into()
    } else {
        WaitFor::port(8080)
    };
    let c = Container::builder(image)
        .cmd(["sh", "-c", &script(delay)])
        .expose(8080)
        .wait_for(wait)
        .start()
        .await?;
    let returned = now_us();
    let stamped = stamp(&c.exec(["cat", "/tmp/t"]).await?.stdout_str());
    Ok((returned - stamped) / 1000.0)
}

/// The same through raw calls: a connect to the container's address (or a GET
/// through the published port) every millisecond.
async fn plain_detect(bench: &Bench, delay: f64, http: bool) -> f64 {
    let script = script(delay);
    let id = raw::create_start(
        &bench.raw,
        raw::body(bench.image, &["sh", "-c", &script], Some(8080)),
    )
    .await;
    let (ip, port) = raw::addresses(&bench.raw, &id, 8080).await;
    loop {
        let ready = if http {
            raw::http_get_answers(port).await
        } else {
            tokio::net::TcpStream::connect((ip, 8080)).await.is_ok()
        };
        if ready {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let returned = now_us();
    let (_, out) = raw::exec_cmd(&bench.raw, &id, vec!["cat", "/tmp/t"]).await;
    raw::remove(&bench.raw, &id).await;
    (returned - stamp(&out)) / 1000.0
}
