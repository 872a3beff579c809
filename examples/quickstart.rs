//! The README's first command: start a web server in a container, talk to it on
//! its random host port, look inside with exec and logs, and let the guard clean
//! up. Run with `cargo run --example quickstart` after `bash scripts/setup.sh`.

#[path = "../fixtures/busybox.rs"]
mod busybox_fixture;

use std::time::Instant;

use dockhand::{Container, WaitFor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> dockhand::Result<()> {
    let image = busybox_fixture::busybox().await?;
    let begun = Instant::now();
    let web = Container::builder(image)
        .cmd([
            "sh",
            "-c",
            "mkdir -p /www && echo 'hello from dockhand' > /www/index.html && echo starting && httpd -f -p 8080 -h /www",
        ])
        .expose(8080)
        .wait_for(WaitFor::http(8080).path("/index.html"))
        .start()
        .await?;
    let addr = web.address(8080)?;
    println!("{} ready at {addr} in {:?}", web.name(), begun.elapsed());

    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /index.html HTTP/1.0\r\n\r\n")
        .await
        .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    println!("GET /index.html -> {}", body.trim());
    assert_eq!(body.trim(), "hello from dockhand");

    let out = web.exec(["sh", "-c", "ls /www"]).await?;
    println!(
        "exec ls /www -> exit {} stdout {:?}",
        out.exit_code,
        out.stdout_str()
    );
    println!("logs: {:?}", web.logs().await?.stdout());

    let id = web.id().to_string();
    web.remove().await?;
    println!("removed {}", &id[..12]);
    Ok(())
}
