"""The agent's authenticated connection to the cloud's online service (what a deployment talks to).

One TCP connection, the same mutual handshake as the feature stream (service "online"), Nagle off
(a feature frame leaves at once, as a deployed device would send it). Every frame the cloud sends
is authenticated and counted by the session, so a forged answer fails its MAC and a replayed one
fails the frame counter; an answer must also name this run and the request it answers, or it is
refused (``ProtocolError``) and the connection is closed.

    with CloudLink(host, port, key, run_id, meta) as link:
        link.ping()                                   # PING -> PONG
        link.transfer(seq, payload)                   # DATA -> ACK
        answer = link.infer(index, feature, s, e)     # INFER -> ANSWER (prediction, cloud_ns)
"""

import select
import socket

from . import protocol as wire


class CloudLink(object):
    """``meta``: {"dtype", "shape" (one feature, no batch), "layout"} of the frames this run sends."""

    def __init__(self, host, port, key, run_id, meta, connect_timeout=5.0, io_timeout=30.0):
        self.address = (host, port)
        self.run_id = run_id
        self.dtype = meta["dtype"]
        self.shape = tuple(int(d) for d in meta["shape"])
        self.layout = meta.get("layout", "NCHW")
        self.io_timeout = io_timeout
        sock = socket.create_connection(self.address, timeout=connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(io_timeout)
            self.session, _, self._recv_exact = wire.client_handshake(
                sock, wire.check_key(key), wire.SERVICE_ONLINE, run_id)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._pings = 0

    # ------------------------------------------------------------ frames

    def frame(self, ftype, seq, payload, start_ns=0, end_ns=0):
        """A sealed tensor frame (DATA or INFER) of this run's feature shape carrying ``payload`` bytes."""
        header = wire.encode_tensor_header(self.run_id, seq, self.dtype, self.layout, self.shape, start_ns, end_ns)
        return self.session.seal(ftype, header, payload)

    def receive(self, *ftypes):
        """The next frame from the cloud, which must be one of ``ftypes`` (ERROR raises ProtocolError)."""
        return wire.expect(wire.read_frame(self._recv_exact, self.session), *ftypes)

    def readable(self, timeout):
        return bool(select.select([self.sock], [], [], timeout)[0])

    def _check_run(self, run_id, seq, expected_seq, what):
        if run_id != self.run_id or seq != expected_seq:
            raise wire.ProtocolError("unexpected-frame", "{} for run {} seq {}, expected run {} seq {}".format(
                what, run_id, seq, self.run_id, expected_seq))

    def acknowledged(self, frame):
        """The ACK ``frame`` decoded and checked to be for this run; its seq."""
        ack = wire.decode_ack(frame)
        if ack.run_id != self.run_id:
            raise wire.ProtocolError("run-mismatch", "ACK for run {}".format(ack.run_id))
        return ack.seq

    # ------------------------------------------------------------ exchanges

    def ping(self):
        """One PING -> PONG round trip (the smallest authenticated exchange)."""
        seq = self._pings
        self._pings += 1
        self.sock.sendall(wire.encode_ping(self.session, wire.PING, self.run_id, seq))
        pong = wire.decode_ping(self.receive(wire.PONG), wire.PONG)
        self._check_run(pong.run_id, pong.seq, seq, "PONG")

    def transfer(self, seq, payload):
        """Deliver one feature-sized DATA frame and wait for its ACK."""
        self.sock.sendall(self.frame(wire.DATA, seq, payload))
        acked = self.acknowledged(self.receive(wire.ACK))
        self._check_run(self.run_id, acked, seq, "ACK")

    def infer(self, index, feature, start_ns=0, end_ns=0):
        """Send the feature of image ``index`` and return the cloud's ``Answer`` for it."""
        self.sock.sendall(self.frame(wire.INFER, index, wire.tensor_payload(feature), start_ns, end_ns))
        answer = wire.decode_answer(self.receive(wire.ANSWER))
        self._check_run(answer.run_id, answer.seq, index, "answer")
        return answer

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
