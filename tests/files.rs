//! Copying files into and out of containers.

mod common;

use common::{busybox, unique};
use dockhand::{Container, Error};

#[tokio::test]
async fn copy_in_before_start_and_while_running() -> dockhand::Result<()> {
    let host = std::env::temp_dir().join(unique("files"));
    std::fs::create_dir_all(host.join("conf.d")).unwrap();
    std::fs::write(host.join("conf.d/a.conf"), b"a=1\n").unwrap();
    std::fs::write(host.join("single.txt"), b"single\n").unwrap();
    let started = Container::builder(busybox().await?)
        .cmd(["sleep", "120"])
        .copy_file_owned("/home/app/secret", b"s3cret".to_vec(), 0o600, 65534, 65534)
        .copy_host_path(host.join("conf.d"), "/etc/app/conf.d")
        .start()
        .await;
    let c = started?;
    c.copy_file_to("/opt/run.sh", b"#!/bin/sh\necho ran\n".to_vec(), 0o755)
        .await?;
    c.copy_host_path_to(host.join("single.txt"), "/srv/single.txt")
        .await?;
    std::fs::remove_dir_all(&host).ok();

    let stat = c.exec(["stat", "-c", "%a %u %g %s", "/home/app/secret"]).await?;
    assert_eq!(stat.stdout_str(), "600 65534 65534 6\n");
    assert_eq!(
        c.exec(["cat", "/etc/app/conf.d/a.conf"]).await?.stdout_str(),
        "a=1\n"
    );
    assert_eq!(c.exec(["/opt/run.sh"]).await?.stdout_str(), "ran\n");
    assert_eq!(c.exec(["cat", "/srv/single.txt"]).await?.stdout_str(), "single\n");
    Ok(())
}

#[tokio::test]
async fn copy_out_as_bytes_tar_and_host_dir() -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .cmd([
            "sh",
            "-c",
            "mkdir -p /out/sub && echo one > /out/1 && echo two > /out/sub/2 && sleep 120",
        ])
        .wait_for(dockhand::WaitFor::command(["test", "-f", "/out/sub/2"]))
        .start()
        .await?;
    assert_eq!(c.copy_file_from("/out/1").await?, b"one\n");

    let tar = c.copy_dir_from("/out").await?;
    // Docker names directories "out/", Podman "out": the entry type says it.
    let mut names: Vec<(String, bool)> = tar::Archive::new(tar.as_slice())
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let dir = e.header().entry_type().is_dir();
            (path.trim_end_matches('/').to_string(), dir)
        })
        .collect();
    names.sort();
    let want = [
        ("out", true),
        ("out/1", false),
        ("out/sub", true),
        ("out/sub/2", false),
    ];
    assert_eq!(names, want.map(|(p, d)| (p.to_string(), d)));

    let host = std::env::temp_dir().join(unique("copy-out"));
    c.copy_dir_to_host("/out", &host).await?;
    let two = std::fs::read_to_string(host.join("out/sub/2"));
    std::fs::remove_dir_all(&host).ok();
    assert_eq!(two.unwrap(), "two\n");

    let err = c.copy_file_from("/out").await.unwrap_err();
    assert!(err.to_string().contains("is a directory"), "{err}");
    Ok(())
}

#[tokio::test]
async fn missing_path_is_a_typed_not_found() -> dockhand::Result<()> {
    let c = Container::builder(busybox().await?)
        .cmd(["sleep", "120"])
        .start()
        .await?;
    let err = c.copy_file_from("/no/such/file").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(matches!(err, Error::Engine { .. }));
    let text = err.to_string();
    assert!(
        text.contains("/no/such/file") && text.contains(c.name()),
        "{text}"
    );

    let err = c
        .copy_host_path_to("/definitely/not/on/host", "/x")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/definitely/not/on/host"), "{err}");
    Ok(())
}
