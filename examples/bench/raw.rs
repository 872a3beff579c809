//! The plain way: raw bollard calls doing what a careful hand-written test does.

use std::collections::HashMap;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig, PortBinding};
use bollard::query_parameters::{CreateContainerOptions, LogsOptions, RemoveContainerOptions};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{HTTPD_CMD, READY_CMD};

/// The same server as the module starts, polled with the same query until it answers.
pub async fn postgres_query(raw: &Docker, image: &str) -> String {
    postgres_query_with(raw, image, |_| {}).await
}

/// The same, with the body changed first (a state volume mounted).
pub async fn postgres_query_with(
    raw: &Docker,
    image: &str,
    change: impl FnOnce(&mut ContainerCreateBody),
) -> String {
    let mut body = body(
        image,
        &[
            "postgres",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ],
        Some(5432),
    );
    body.env = Some(
        [
            "POSTGRES_USER=postgres",
            "POSTGRES_PASSWORD=postgres",
            "POSTGRES_DB=postgres",
            "PGDATA=/var/lib/postgresql/data/pgdata",
        ]
        .map(String::from)
        .to_vec(),
    );
    if let Some(hc) = body.host_config.as_mut() {
        hc.tmpfs = Some(HashMap::from([(
            "/var/lib/postgresql/data".to_string(),
            "rw,mode=0777".to_string(),
        )]));
    }
    change(&mut body);
    let id = create_start(raw, body).await;
    let inspected = raw.inspect_container(&id, None).await.expect("inspect");
    let port = inspected.network_settings.unwrap().ports.unwrap()["5432/tcp"]
        .as_ref()
        .unwrap()[0]
        .host_port
        .clone()
        .unwrap();
    let url = format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres");
    loop {
        if let Ok((client, connection)) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            let connection = tokio::spawn(connection);
            let ok = client.query_one("SELECT 1", &[]).await.is_ok();
            drop(client);
            let _ = connection.await;
            if ok {
                return id;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn body(image: &str, cmd: &[&str], port: Option<u16>) -> ContainerCreateBody {
    let host_config = port.map(|p| HostConfig {
        port_bindings: Some(HashMap::from([(
            format!("{p}/tcp"),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(String::new()),
            }]),
        )])),
        ..Default::default()
    });
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        exposed_ports: port.map(|p| vec![format!("{p}/tcp")]),
        labels: Some(HashMap::from([("dockhand-bench".to_string(), "raw".to_string())])),
        host_config,
        ..Default::default()
    }
}

pub async fn create_start(raw: &Docker, body: ContainerCreateBody) -> String {
    let name = format!("bench-raw-{}", rand::random::<u64>());
    let options = CreateContainerOptions {
        name: Some(name),
        ..Default::default()
    };
    let id = raw
        .create_container(Some(options), body)
        .await
        .expect("create")
        .id;
    raw.start_container(&id, None).await.expect("start");
    id
}

pub async fn start_ready(raw: &Docker, image: &str) -> String {
    start_ready_with(raw, body(image, &READY_CMD, None)).await
}

/// The ready-line start of any request (one on a network, say).
pub async fn start_ready_with(raw: &Docker, body: ContainerCreateBody) -> String {
    let id = create_start(raw, body).await;
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        ..Default::default()
    };
    let mut logs = raw.logs(&id, Some(options));
    let mut seen = String::new();
    while let Some(frame) = logs.next().await {
        seen.push_str(&String::from_utf8_lossy(&frame.expect("logs").into_bytes()));
        if seen.contains("ready") {
            break;
        }
    }
    id
}

pub async fn port_ready(raw: &Docker, image: &str) -> String {
    let id = create_start(raw, body(image, &HTTPD_CMD, Some(8080))).await;
    let inspected = raw.inspect_container(&id, None).await.expect("inspect");
    let port: u16 = inspected.network_settings.unwrap().ports.unwrap()["8080/tcp"]
        .as_ref()
        .unwrap()[0]
        .host_port
        .as_ref()
        .unwrap()
        .parse()
        .unwrap();
    loop {
        if http_get_answers(port).await {
            return id;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn http_get_answers(port: u16) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if s.write_all(b"GET / HTTP/1.0\r\n\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf).await, Ok(n) if n >= 5 && buf.starts_with(b"HTTP/"))
}

pub async fn exec(raw: &Docker, id: &str) -> (i64, String) {
    exec_cmd(raw, id, vec!["echo", "hi"]).await
}

/// The container's own address and the host port `port` is published on.
pub async fn addresses(raw: &Docker, id: &str, port: u16) -> (std::net::IpAddr, u16) {
    let settings = raw
        .inspect_container(id, None)
        .await
        .expect("inspect")
        .network_settings
        .unwrap();
    let host_port = settings.ports.unwrap()[&format!("{port}/tcp")].as_ref().unwrap()[0]
        .host_port
        .as_ref()
        .unwrap()
        .parse()
        .unwrap();
    let ip = settings
        .networks
        .unwrap()
        .into_values()
        .find_map(|n| n.ip_address?.parse().ok())
        .unwrap();
    (ip, host_port)
}

pub async fn exec_cmd(raw: &Docker, id: &str, cmd: Vec<&str>) -> (i64, String) {
    let exec = raw
        .create_exec(
            id,
            CreateExecOptions {
                cmd: Some(cmd),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("create exec");
    let mut stdout = String::new();
    if let StartExecResults::Attached { mut output, .. } =
        raw.start_exec(&exec.id, None).await.expect("start exec")
    {
        while let Some(Ok(frame)) = output.next().await {
            if let LogOutput::StdOut { message } = frame {
                stdout.push_str(&String::from_utf8_lossy(&message));
            }
        }
    }
    let code = raw
        .inspect_exec(&exec.id)
        .await
        .expect("inspect exec")
        .exit_code
        .unwrap_or(-1);
    (code, stdout)
}

pub async fn remove(raw: &Docker, id: &str) {
    let options = RemoveContainerOptions {
        force: true,
        ..Default::default()
    };
    raw.remove_container(id, Some(options)).await.expect("remove");
}

/// A ready-line container on `network` under `alias`.
pub fn on_network(image: &str, network: &str, alias: &str) -> ContainerCreateBody {
    let endpoint = bollard::models::EndpointSettings {
        aliases: Some(vec![alias.to_string()]),
        ..Default::default()
    };
    ContainerCreateBody {
        host_config: Some(HostConfig {
            network_mode: Some(network.to_string()),
            ..Default::default()
        }),
        networking_config: Some(bollard::models::NetworkingConfig {
            endpoints_config: Some(HashMap::from([(network.to_string(), endpoint)])),
        }),
        ..body(image, &READY_CMD, None)
    }
}
