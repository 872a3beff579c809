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

#[cfg(test)]
mod tests {
    use super::*;

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
