//! Three nodes on one network; cut one off, then heal it. Prints who reaches whom
//! at each step: `cargo run --example partition`.

#[path = "../fixtures/busybox.rs"]
mod busybox_fixture;

use dockhand::{Container, Network, WaitFor};

const NODES: [&str; 3] = ["n1", "n2", "n3"];

#[tokio::main]
async fn main() -> dockhand::Result<()> {
    let image = busybox_fixture::busybox().await?;
    let net = Network::builder().create().await?;
    let mut nodes = Vec::new();
    for name in NODES {
        let node = Container::builder(image)
            .cmd([
                "sh",
                "-c",
                "mkdir -p /www && hostname > /www/index.html && httpd -f -p 8080 -h /www",
            ])
            .hostname(name)
            .network_alias(&net, name)
            .wait_for(WaitFor::command([
                "wget",
                "-q",
                "-O",
                "-",
                "http://127.0.0.1:8080/",
            ]))
            .start()
            .await?;
        nodes.push(node);
    }

    print_matrix("all connected", &nodes).await?;
    nodes[2].disconnect(&net).await?;
    print_matrix("n3 cut off", &nodes).await?;
    nodes[2].connect(&net, &["n3"]).await?;
    print_matrix("healed", &nodes).await?;
    Ok(())
}

async fn print_matrix(title: &str, nodes: &[Container]) -> dockhand::Result<()> {
    println!("{title}:");
    for (from, node) in NODES.iter().zip(nodes) {
        let mut row = Vec::new();
        for to in NODES.iter().filter(|t| *t != from) {
            let url = format!("http://{to}:8080/");
            let out = node
                .exec(["timeout", "2", "wget", "-q", "-O", "-", url.as_str()])
                .await?;
            row.push(format!("{to}:{}", if out.success() { "ok" } else { "--" }));
        }
        println!("  {from} -> {}", row.join(" "));
    }
    Ok(())
}
