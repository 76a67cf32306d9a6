import CMosquitto
import Foundation

/// libmosquitto 2.0's wake-up socket, and how a client that runs its own loop turns it off.
///
/// For every packet it queues (each PUBACK of a received message, each PUBLISH), libmosquitto 2.0
/// writes a byte to one end of a socket pair (`sockpairW`), so that `mosquitto_loop`, waiting in
/// select(2) on the other end, wakes up. `MosquittoClient` runs its own loop on poll(2) and its own
/// wake-up pipe (`MosquittoClient.wakeLoop`, which writes only while the loop waits): nobody reads
/// that socket, it fills up, and every later write fails with EAGAIN. That failed system call was
/// one of the five the loop made for each message of a backlog, about a tenth of its time.
///
/// The library offers no setting for it. The socket pair's descriptors are the second and third
/// fields of its `struct mosquitto`, which begins, in every 2.0 release (2.0.0 to 2.0.20,
/// lib/mosquitto_internal.h):
///
///     mosq_sock_t sock;                 /* -1 (INVALID_SOCKET) until connected */
///     mosq_sock_t sockpairR, sockpairW;
///
/// and a `sockpairW` of -1 makes `packet__queue` skip the write (it is how the library runs when
/// it cannot open the pair). `silence` checks everything it can before it changes anything: the
/// library's version is 2.0, the first field is -1 and `mosquitto_socket` says so, the next two
/// are two distinct stream sockets of the Unix domain whose peer is this process, the one that
/// would read has nothing to read, and then a byte written to the one is read from the other.
/// Only then does it set `sockpairW` to -1 and close that descriptor (the library
/// closes `sockpairR`, as before, in `mosquitto_destroy`). Anything unexpected leaves the handle
/// untouched: the client works as before, one system call a packet slower.
enum LibraryWakeSocket {
    /// Why the wake-up socket was left on, or nil once it is off. Call it on a handle just made by
    /// `mosquitto_new`, before it connects and before any other thread can use it.
    static func silence(_ mosq: OpaquePointer) -> String? {
        var major: Int32 = 0, minor: Int32 = 0, revision: Int32 = 0
        _ = mosquitto_lib_version(&major, &minor, &revision)
        guard major == 2, minor == 0 else { return "libmosquitto \(major).\(minor).\(revision) is not a 2.0 release" }
        let fields = UnsafeMutableRawPointer(mosq).assumingMemoryBound(to: Int32.self)
        let sock = fields[0], reader = fields[1], writer = fields[2]
        guard sock == -1, mosquitto_socket(mosq) == -1 else { return "the handle's first field is not its unconnected socket" }
        guard reader >= 0, writer >= 0, reader != writer,
              isUnixStreamSocket(reader), isUnixStreamSocket(writer) else {
            return "the handle's second and third fields are not a Unix socket pair"
        }
        guard arePair(writer: writer, reader: reader) else { return "the two sockets are not connected to each other" }
        fields[2] = -1
        close(writer)
        return nil
    }

    /// True for a stream socket of the Unix domain connected to this very process (a socket pair's
    /// end). getsockopt fails (ENOTSOCK, EBADF) on anything but an open socket.
    private static func isUnixStreamSocket(_ descriptor: Int32) -> Bool {
        var domain: Int32 = 0, type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0, domain == AF_UNIX else { return false }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_STREAM.rawValue) else { return false }
        // struct ucred { pid_t pid; uid_t uid; gid_t gid; } (Glibc leaves it out without _GNU_SOURCE).
        var peer: (pid: Int32, uid: UInt32, gid: UInt32) = (0, 0, 0)
        length = socklen_t(MemoryLayout.size(ofValue: peer))
        return getsockopt(descriptor, SOL_SOCKET, SO_PEERCRED, &peer, &length) == 0 && peer.pid == getpid()
    }

    /// True when a byte sent on `writer` is the next byte `reader` receives. Nothing is sent
    /// unless `reader` is empty, as both ends are on a handle just made (nothing queued yet).
    private static func arePair(writer: Int32, reader: Int32) -> Bool {
        var waiting: UInt8 = 0
        guard recv(reader, &waiting, 1, Int32(MSG_DONTWAIT | MSG_PEEK)) == -1, errno == EAGAIN || errno == EWOULDBLOCK else { return false }
        var probe: UInt8 = 0xA5
        guard send(writer, &probe, 1, Int32(MSG_DONTWAIT)) == 1 else { return false }
        var received: UInt8 = 0
        return recv(reader, &received, 1, Int32(MSG_DONTWAIT)) == 1 && received == probe
    }
}
