//! Linux: which uid owns the other end of a loopback TCP connection, from the kernel's socket
//! table (NETLINK_SOCK_DIAG), looked up by the exact 4-tuple of the client's socket.
//! Must not: guess (no match, or an answer for another socket, is an error), or be used for
//! anything but loopback connections accepted by this process.

use std::io;
use std::net::SocketAddr;

use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
};
use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};

/// The uid owning the socket whose local address is `client` and remote address `server`:
/// the client's end of a connection this process accepted (`client` = its peer address,
/// `server` = its local address).
pub fn tcp_owner(client: SocketAddr, server: SocketAddr) -> io::Result<u32> {
    let family = match (client, server) {
        (SocketAddr::V4(_), SocketAddr::V4(_)) => AF_INET,
        (SocketAddr::V6(_), SocketAddr::V6(_)) => AF_INET6,
        _ => return Err(io::Error::other("mixed address families")),
    };
    let wanted = SocketId {
        source_port: client.port(),
        destination_port: server.port(),
        source_address: client.ip(),
        destination_address: server.ip(),
        interface_id: 0,
        // INET_DIAG_NOCOOKIE: an exact lookup by address, not by cookie.
        cookie: [0xff; 8],
    };
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&NlAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    // No NLM_F_DUMP: the kernel finds the one socket with this 4-tuple.
    header.flags = NLM_F_REQUEST;
    let mut packet = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: wanted.clone(),
        })
        .into(),
    );
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf[..]);
    socket.send(&buf[..], 0)?;
    // The kernel answers within the send, so the answer is queued by now: never block on it.
    socket.set_non_blocking(true)?;
    let mut answer = vec![0u8; 8192];
    let n = socket.recv(&mut &mut answer[..], 0)?;
    let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&answer[..n])
        .map_err(|e| io::Error::other(format!("unreadable sock_diag answer: {e}")))?;
    match msg.payload {
        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
            let got = &r.header.socket_id;
            if got.source_port != wanted.source_port
                || got.destination_port != wanted.destination_port
                || got.source_address != wanted.source_address
                || got.destination_address != wanted.destination_address
            {
                return Err(io::Error::other("the kernel answered for another socket"));
            }
            Ok(r.header.uid)
        }
        NetlinkPayload::Error(e) => Err(io::Error::other(format!(
            "no such socket in the kernel's table ({e})"
        ))),
        other => Err(io::Error::other(format!(
            "unexpected sock_diag answer: {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_client_end_of_a_loopback_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let me = rustix::process::geteuid().as_raw();
        assert_eq!(tcp_owner(peer, accepted.local_addr().unwrap()).unwrap(), me);
        // A 4-tuple nobody has is an error, not a guess.
        let nobody: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert!(tcp_owner(nobody, accepted.local_addr().unwrap()).is_err());
        drop(client);
    }
}
