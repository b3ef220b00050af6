//! A TCP proxy the test controls, to cut a process off from a nats-server
//! (or two nats-servers from each other) and heal it again.

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A TCP proxy to a local port (a nats-server's client or route port): cutting it closes every connection and
/// refuses new ones until healed.
pub struct Proxy {
    pub port: u16,
    cut: watch::Sender<bool>,
    _task: tokio_util::task::AbortOnDropHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, watching) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                let mut cut = watching.clone();
                if *cut.borrow() {
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Proxy {
            port,
            cut,
            _task: tokio_util::task::AbortOnDropHandle::new(task),
        }
    }

    pub fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}
