//! Image references: `[registry/]repo[:tag][@digest]` split the way the engine
//! splits them.

/// `repo[:tag][@digest]` into repository and tag (`latest` when none); a port in
/// the registry host is not a tag.
pub(crate) fn split_reference(image: &str) -> (&str, &str) {
    if image.contains('@') {
        return (image, "");
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

/// The registry a reference names: its first component when that looks like a
/// host (has a `.` or `:`, or is `localhost`), else Docker Hub.
pub(crate) fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// A reference in full, as Podman names images: `busybox` is
/// `docker.io/library/busybox:latest`, `fixtures/x:1` is `docker.io/fixtures/x:1`.
fn qualified(reference: &str) -> String {
    let (repo, tag) = split_reference(reference);
    let registry = registry_of(repo);
    let path = repo
        .strip_prefix(registry)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or(repo);
    let path = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    match tag {
        "" => format!("{registry}/{path}"),
        tag => format!("{registry}/{path}:{tag}"),
    }
}

/// A reference as Docker shows it: Podman's `docker.io/library/busybox:1` is
/// `busybox:1`, its `docker.io/fixtures/x:1` is `fixtures/x:1`.
pub(crate) fn familiar(reference: &str) -> &str {
    reference
        .strip_prefix("docker.io/library/")
        .filter(|rest| !rest.contains('/'))
        .or_else(|| reference.strip_prefix("docker.io/"))
        .unwrap_or(reference)
}

/// Whether two references name the same image, whichever engine wrote them
/// (Docker shows `busybox:latest`, Podman `docker.io/library/busybox:latest`).
pub(crate) fn same_name(a: &str, b: &str) -> bool {
    a == b || qualified(a) == qualified(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_names_drop_docker_hubs_prefixes() {
        assert_eq!(familiar("docker.io/library/busybox:1"), "busybox:1");
        assert_eq!(familiar("docker.io/fixtures/x:1"), "fixtures/x:1");
        assert_eq!(familiar("127.0.0.1:5000/a:1"), "127.0.0.1:5000/a:1");
    }

    #[test]
    fn short_and_qualified_names_are_the_same_image() {
        assert!(same_name("busybox", "docker.io/library/busybox:latest"));
        assert!(same_name(
            "fixtures/busybox:latest",
            "docker.io/fixtures/busybox:latest"
        ));
        assert!(same_name("127.0.0.1:5000/a:1", "127.0.0.1:5000/a:1"));
        assert!(!same_name(
            "fixtures/busybox:latest",
            "docker.io/fixtures/busybox:1"
        ));
        assert!(!same_name("127.0.0.1:5000/a:1", "docker.io/a:1"));
        assert!(!same_name("localhost/a:1", "docker.io/library/a:1"));
    }

    #[test]
    fn registry_is_the_first_component_when_it_is_a_host() {
        assert_eq!(registry_of("postgres:16-alpine"), "docker.io");
        assert_eq!(registry_of("library/postgres"), "docker.io");
        assert_eq!(registry_of("127.0.0.1:5000/app:1"), "127.0.0.1:5000");
        assert_eq!(registry_of("ghcr.io/org/app"), "ghcr.io");
        assert_eq!(registry_of("localhost/app"), "localhost");
    }

    #[test]
    fn tag_is_not_the_registry_port() {
        assert_eq!(split_reference("busybox"), ("busybox", "latest"));
        assert_eq!(split_reference("postgres:16-alpine"), ("postgres", "16-alpine"));
        assert_eq!(
            split_reference("127.0.0.1:5000/app"),
            ("127.0.0.1:5000/app", "latest")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/app:2"),
            ("127.0.0.1:5000/app", "2")
        );
        assert_eq!(split_reference("app@sha256:ab"), ("app@sha256:ab", ""));
    }
}
