//! `stanchion healthcheck`: asks the running server's `/healthz` whether it
//! is up, for a container `HEALTHCHECK` in an image that has no curl.
//!
//! Reads the same configuration as the server (so `STANCHION_HTTP_PORT`, or
//! `-m` given to it), else asks port 8222, and speaks just enough HTTP/1.0
//! over a std socket to read a status line.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::time::Duration;

use stanchion::config::Config;

/// The port asked when none is configured: NSS's (and the image's) monitoring port.
const DEFAULT_PORT: u16 = 8222;

/// How long the check may take, connect and answer together.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Exits 0 when `/healthz` answers 200, 1 otherwise (with the reason on stderr).
pub fn run(config: &Config) -> ExitCode {
    match check(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stanchion healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(config: &Config) -> Result<(), String> {
    // The image's CMD is `-m 8222`, which this process does not see.
    let port = u16::try_from(config.http_port)
        .ok()
        .filter(|p| *p > 0)
        .unwrap_or(DEFAULT_PORT);
    // A wildcard bind answers on loopback; otherwise ask where it listens.
    let host = match config.http_host.as_str() {
        "" | "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
        host => host.trim_start_matches('[').trim_end_matches(']'),
    };
    let addr = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("{host}:{port}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host}:{port}: no address"))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("{addr}: {e}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .map_err(|e| format!("{addr}: {e}"))?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head).map_err(|e| format!("{addr}: {e}"))?;
    let status = String::from_utf8_lossy(&head[..n]);
    let line = status.lines().next().unwrap_or_default();
    if line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("{addr}: /healthz answered {line:?}"))
    }
}
