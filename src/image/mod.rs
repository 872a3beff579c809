//! Building images from in-memory contexts.

mod context;
mod import;

use std::collections::VecDeque;

use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;

pub use context::BuildContext;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::labels;

/// How many lines of build output a failure carries.
const FAILURE_LINES: usize = 50;

impl BuildContext {
    /// Builds the context into an image tagged `tag` and returns the image id.
    /// Build output goes to `tracing` (target `dockhand::image`), one event per line.
    ///
    /// ```no_run
    /// # async fn demo() -> dockhand::Result<()> {
    /// let id = dockhand::BuildContext::new("FROM scratch\nCOPY hello /hello\n")
    ///     .file("hello", b"hi\n".to_vec(), 0o644)
    ///     .build("example/hello:latest")
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn build(&self, tag: &str) -> Result<String> {
        let engine = Engine::connect().await?;
        self.build_on(&engine, tag).await
    }

    /// [`build`](Self::build) on a given engine.
    ///
    /// ```no_run
    /// # async fn demo(engine: &dockhand::Engine) -> dockhand::Result<()> {
    /// let id = dockhand::BuildContext::new("FROM scratch\n").build_on(engine, "x:1").await;
    /// # Ok(()) }
    /// ```
    pub async fn build_on(&self, engine: &Engine, tag: &str) -> Result<String> {
        if tag.trim().is_empty() {
            return Err(Error::invalid("image build", "the tag is empty"));
        }
        let tar = self.to_tar()?;
        let resource = format!("image {tag}");
        let labels = if self.persistent {
            let mut labels = self.labels.clone();
            if labels.keys().any(|k| k.starts_with(labels::PREFIX)) {
                return Err(Error::invalid(
                    resource,
                    "labels starting with dockhand. are reserved",
                ));
            }
            labels.insert(labels::PERSISTENT.into(), "true".into());
            labels
        } else {
            labels::stamp(&resource, &self.labels)?
        };
        let options = BuildImageOptions {
            t: Some(tag.to_string()),
            labels: Some(labels),
            rm: true,
            forcerm: true,
            ..Default::default()
        };
        let mut output = engine
            .docker()
            .build_image(options, None, Some(bollard::body_full(tar.into())));
        let mut last_lines: VecDeque<String> = VecDeque::new();
        let mut step: Option<String> = None;
        let mut id: Option<String> = None;
        let fail = |message: String, step: Option<String>, lines: &VecDeque<String>| Error::BuildFailed {
            image: tag.to_string(),
            step,
            message,
            output: lines.iter().cloned().collect(),
        };
        while let Some(event) = output.next().await {
            let event = match event {
                Ok(event) => event,
                Err(err) => return Err(fail(err.to_string(), step, &last_lines)),
            };
            if let Some(text) = event.stream.as_deref() {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    if line.starts_with("Step ") {
                        step = Some(line.to_string());
                    }
                    tracing::debug!(target: "dockhand::image", image = tag, "{line}");
                    if last_lines.len() == FAILURE_LINES {
                        last_lines.pop_front();
                    }
                    last_lines.push_back(line.to_string());
                }
            }
            if let Some(detail) = event.error_detail {
                let message = detail.message.unwrap_or_else(|| "unknown build error".into());
                return Err(fail(message, step, &last_lines));
            }
            if let Some(image) = event.aux {
                id = image.id.or(id);
            }
        }
        match id {
            Some(id) => Ok(id),
            None => engine
                .docker()
                .inspect_image(tag)
                .await
                .map_err(|e| Error::engine("inspect built image", tag, e))
                .map(|i| i.id.unwrap_or_default()),
        }
    }
}
