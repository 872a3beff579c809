//! An OOM kill that Docker reported after the exit.
//!
//! Docker sets `State.OOMKilled` only when containerd's OOM event reaches it
//! before the exit event. Under load the exit can come first (a process killed
//! right after it starts, containerd#8180), and the flag then stays false for
//! good, while the engine still logs an `oom` event for the container. An
//! error that says "exited with code 137 (SIGKILL)" for a container the memory
//! limit killed would send its reader the wrong way.

use std::time::{Duration, SystemTime};

use bollard::models::{ContainerState, ContainerStateStatusEnum};
use futures_util::StreamExt;

use super::Container;
use crate::remove::ObjectKind;
use crate::{engine_time, EngineKind, Scope};

/// How long after the exit the engine's `oom` event may still come.
const LATE_OOM: Duration = Duration::from_secs(1);

/// Sets `oom_killed` when the current run ended by SIGKILL without the flag
/// and the engine logged an `oom` for it. Podman 4 on cgroup v1 records none,
/// so it is not asked.
pub(super) async fn flag_late_oom(container: &Container, state: &mut ContainerState) {
    let sigkilled = state.exit_code == Some(137)
        && state.oom_killed != Some(true)
        && state.status == Some(ContainerStateStatusEnum::EXITED);
    if !sigkilled || container.engine().kind() == EngineKind::Podman {
        return;
    }
    // From this run's start: an earlier run's OOM is not this one's.
    let Some(started) = state.started_at.as_deref().and_then(engine_time) else {
        return;
    };
    let events = container
        .engine()
        .events()
        .scope(Scope::Everything)
        .kind(ObjectKind::Container)
        .object(container.id())
        .action("oom")
        .since(started)
        .until(SystemTime::now() + LATE_OOM)
        .stream();
    let Ok(mut events) = events else { return };
    let seen = tokio::time::timeout(LATE_OOM * 2, events.next()).await;
    if matches!(seen, Ok(Some(Ok(_)))) {
        state.oom_killed = Some(true);
    }
}
