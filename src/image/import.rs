//! Importing a root filesystem tarball as an image (`docker import`), streamed
//! from disk: a database base image is close to a gigabyte.

use std::path::Path;

use bollard::query_parameters::CreateImageOptions;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use super::reference::split_reference;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::labels;

const CHUNK: usize = 1 << 20;

impl Engine {
    /// Imports a tar of a root filesystem as image `reference` and returns its id.
    /// The image is persistent: it is not owned by this process, so no cleanup
    /// removes it (import once per machine, then reuse).
    ///
    /// ```no_run
    /// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
    /// let id = engine.import_rootfs("target/rootfs.tar", "fixtures/debian:bookworm").await?;
    /// # Ok(()) }
    /// ```
    pub async fn import_rootfs(&self, tar_path: impl AsRef<Path>, reference: &str) -> Result<String> {
        let path = tar_path.as_ref();
        let resource = format!("image {reference} from {}", path.display());
        let file = tokio::fs::File::open(path).await.map_err(|source| Error::Io {
            operation: "open rootfs tar for",
            resource: resource.clone(),
            source,
        })?;
        let body = futures_util::stream::unfold(file, |mut file| async move {
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        });
        let (repo, tag) = split_reference(reference);
        let options = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            changes: vec![format!("LABEL {}=true", labels::PERSISTENT)],
            ..Default::default()
        };
        let mut progress =
            self.docker()
                .create_image(Some(options), Some(bollard::body_try_stream(body)), None);
        while let Some(step) = progress.next().await {
            let step = step.map_err(|e| Error::engine("import", resource.clone(), e))?;
            if let Some(message) = step.error_detail.and_then(|d| d.message) {
                return Err(Error::BuildFailed {
                    image: reference.to_string(),
                    step: None,
                    exit_code: None,
                    message,
                    output: Vec::new(),
                });
            }
        }
        let inspected = self
            .docker()
            .inspect_image(reference)
            .await
            .map_err(|e| Error::engine("inspect imported", resource, e))?;
        Ok(inspected.id.unwrap_or_default())
    }
}
