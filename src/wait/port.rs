//! The port probe: is the service inside really listening?
//!
//! Exact where the engine allows it: on a local engine the host reaches the
//! container's own address, where a connect is refused until the service
//! listens ([`direct`]). Where it does not (a remote engine, Docker Desktop's
//! VM), the last resort is a heuristic through the published port ([`probe`]):
//! Docker's userland proxy accepts a connection at once and only then dials the
//! container, closing the client's connection within a millisecond when nothing
//! listens there; a connection that stays open and silent for 25 ms (or carries
//! a greeting) counts as listening. On a heavily loaded machine the proxy's own
//! dial can take longer than that, so this fallback can report early. Engines
//! without a proxy (Podman) refuse the connect itself until the service listens.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How long an accepted connection must stay open to count. The proxy's close
/// comes well under a millisecond here; 25 ms leaves a wide margin.
const SETTLE: Duration = Duration::from_millis(25);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// What a connect to the container's own address says.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Direct {
    /// The service accepted: it listens.
    Listening,
    /// Refused: nothing listens yet.
    NotYet,
    /// The host cannot reach the container's address: use [`probe`].
    Unreachable,
}

/// How long a connect to the container's own address may take. On the bridge
/// it answers in microseconds; silence means it is not reachable from here.
const DIRECT_TIMEOUT: Duration = Duration::from_millis(200);

/// Connects to the container's own address, where only the service itself
/// can accept.
pub(crate) async fn direct(addr: std::net::SocketAddr) -> Direct {
    match tokio::time::timeout(DIRECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Direct::Listening,
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::ConnectionRefused => Direct::NotYet,
        Ok(Err(_)) | Err(_) => Direct::Unreachable,
    }
}

/// True when a service answers behind `host:port` (the heuristic, see above).
pub(crate) async fn probe(host: &str, port: u16) -> bool {
    let connect = TcpStream::connect((host, port));
    let Ok(Ok(mut stream)) = tokio::time::timeout(CONNECT_TIMEOUT, connect).await else {
        return false;
    };
    // Published ports come from the range the kernel picks client ports from:
    // once the proxy is gone (the container exited) a connect to the freed
    // port can be given that very port as its own and "connect" to itself, a
    // silent open socket that would pass for a listening service.
    if is_self_connect(&stream) {
        return false;
    }
    let mut buf = [0u8; 64];
    match tokio::time::timeout(SETTLE, stream.read(&mut buf)).await {
        // Still open and silent: the proxy's dial succeeded and the service waits
        // for the client to speak.
        Err(_) => true,
        // A greeting (SSH, SMTP, MySQL...) comes from the service itself.
        Ok(Ok(n)) => n > 0,
        // Reset: nothing listens behind the proxy.
        Ok(Err(_)) => false,
    }
}

fn is_self_connect(stream: &TcpStream) -> bool {
    matches!((stream.local_addr(), stream.peer_addr()), (Ok(local), Ok(peer)) if local == peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn silent_listener_is_ready_and_closer_is_not() {
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent_port = silent.local_addr().unwrap().port();
        let keep = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (s, _) = silent.accept().await.unwrap();
                held.push(s);
            }
        });
        assert!(probe("127.0.0.1", silent_port).await);

        // Behaves like the proxy with nothing behind it: accept, then close.
        let closer = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closer_port = closer.local_addr().unwrap().port();
        let close = tokio::spawn(async move {
            loop {
                let (s, _) = closer.accept().await.unwrap();
                drop(s);
            }
        });
        assert!(!probe("127.0.0.1", closer_port).await);

        let greeter = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let greeter_port = greeter.local_addr().unwrap().port();
        let greet = tokio::spawn(async move {
            let (mut s, _) = greeter.accept().await.unwrap();
            s.write_all(b"220 hello\r\n").await.unwrap();
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        assert!(probe("127.0.0.1", greeter_port).await);

        keep.abort();
        close.abort();
        greet.abort();
    }

    #[tokio::test]
    async fn direct_tells_listening_from_refused() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = l.local_addr().unwrap();
        assert_eq!(direct(open).await, Direct::Listening);
        drop(l);
        assert_eq!(direct(open).await, Direct::NotYet);
    }

    #[tokio::test]
    async fn a_socket_connected_to_itself_is_told_apart() {
        // Bound to the port it then dials, a socket meets itself (TCP's
        // simultaneous open): what a probe of a freed port can run into.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(free).unwrap();
        let looped = socket.connect(free).await.unwrap();
        assert!(is_self_connect(&looped));

        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let real = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        assert!(!is_self_connect(&real));
    }

    #[tokio::test]
    async fn refused_is_not_ready() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        assert!(!probe("127.0.0.1", port).await);
    }
}
