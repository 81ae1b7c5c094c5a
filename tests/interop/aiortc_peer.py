#!/usr/bin/env python3
"""An independent WebRTC participant for kammer, built on aiortc.

It joins a room over the signalling WebSocket (protocol 1, docs/protocol.md), publishes one
synthetic camera track on its publish connection, answers the server's offers on its subscribe
connection, and decodes everything it receives. It reports what happens as JSON lines on stdout,
one object per line with an "event" field, for a test driver to assert on:

    {"event": "joined", "you": 7, "role": "moderator"}
    {"event": "frames", "participant": 8, "source": "camera", "kind": "video", "count": 42, ...}

Usage (the demo prints the URL and the CA file):

    python aiortc_peer.py --url https://127.0.0.1:PORT/ --ca-file CA.pem --room ROOM --name NAME \
        [--admit-lobby] [--duration SECONDS] [--video-codec any|vp8|h264]

It stops on SIGTERM or SIGINT (leaving the room first), after --duration seconds, or when the
server closes the connection. Exit status 0 after a requested stop, 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import ssl
import sys
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aioice.ice
import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtp import RTCP_PSFB_FIR, RTCP_PSFB_PLI, RTCP_RTPFB_NACK, RtcpPsfbPacket, RtcpRtpfbPacket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

PROTOCOL_VERSION = 1
# The protocol asks clients to say something at least every idle_timeout_secs (60 s by default).
KEEPALIVE_SECONDS = 15
# A "frames" line per track at most this often (plus the first frame of each track).
PROGRESS_SECONDS = 1.0
FRAME_WIDTH = 320
FRAME_HEIGHT = 240


def emit(event: str, **fields: Any) -> None:
    """Writes one progress line: a JSON object with an "event" field."""
    fields = {"event": event, **fields, "t": round(time.monotonic(), 3)}
    sys.stdout.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------------------------------------
# ICE on loopback

def use_host_addresses(addresses: list[str]) -> None:
    """Makes aioice gather host candidates on exactly `addresses`.

    aioice leaves out 127.0.0.1 when it lists the machine's addresses, but the demo server
    listens and announces its candidates on loopback only.
    """

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [a for a in addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    aioice.ice.get_host_addresses = host_addresses


def peer_connection() -> RTCPeerConnection:
    # No STUN or TURN server (aiortc's default is a public STUN server); BUNDLE on one transport.
    return RTCPeerConnection(
        RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


# ------------------------------------------------------------------------------------------------
# The synthetic camera

class MovingPattern(VideoStreamTrack):
    """30 frames per second of a bar sweeping across a slowly changing background, so the
    encoder sees motion in every frame."""

    def __init__(self) -> None:
        super().__init__()
        self.frames = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        n = self.frames
        self.frames += 1
        frame = av.VideoFrame(width=FRAME_WIDTH, height=FRAME_HEIGHT, format="yuv420p")
        luma, cb, cr = frame.planes
        # Luma: a bright vertical bar moving right, a dark horizontal bar moving down.
        stride = luma.line_size
        row = bytearray([60 + (n % 100)]) * stride
        left = (n * 6) % FRAME_WIDTH
        right = min(left + 24, FRAME_WIDTH)
        row[left:right] = bytes([235]) * (right - left)
        data = row * FRAME_HEIGHT
        top = (n * 3) % FRAME_HEIGHT
        for y in range(top, min(top + 16, FRAME_HEIGHT)):
            data[y * stride : y * stride + FRAME_WIDTH] = bytes([16]) * FRAME_WIDTH
        luma.update(bytes(data))
        # Chroma: a colour that drifts over time.
        cb.update(bytes([(128 + n) % 256]) * cb.buffer_size)
        cr.update(bytes([(128 - n) % 256]) * cr.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        return frame


def report_feedback(sender: RTCRtpSender) -> None:
    """Reports the keyframe requests (PLI, FIR) and NACKs that reach a sender through the
    server, at most once per PROGRESS_SECONDS: whether the SFU relays subscribers' feedback to
    this publisher. aiortc itself does not log what its senders receive."""
    counts = {"pli": 0, "fir": 0, "nack": 0}
    last = [0.0]
    handle = sender._handle_rtcp_packet

    async def counting(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_PLI:
            counts["pli"] += 1
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_FIR:
            counts["fir"] += 1
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            counts["nack"] += 1
        else:
            return await handle(packet)
        now = time.monotonic()
        if now - last[0] >= PROGRESS_SECONDS:
            last[0] = now
            emit("feedback", pc="publish", **counts)
        await handle(packet)

    sender._handle_rtcp_packet = counting


def restrict_video_codec(transceiver: Any, choice: str) -> None:
    """Offers only the chosen codec (and no RTX), or aiortc's full list for "any"."""
    if choice == "any":
        return
    mime = {"vp8": "video/VP8", "h264": "video/H264"}[choice]
    codecs = [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == mime]
    transceiver.setCodecPreferences(codecs)


# ------------------------------------------------------------------------------------------------
# SDP helpers (only what aiortc does not do itself)

def sections(sdp: str) -> tuple[list[str], list[list[str]]]:
    """Splits an SDP into its session lines and one list of lines per media section."""
    session: list[str] = []
    media: list[list[str]] = []
    for line in sdp.splitlines():
        if not line:
            continue
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        else:
            session.append(line)
    return session, media


def section_mid(lines: list[str]) -> str | None:
    for line in lines:
        if line.startswith("a=mid:"):
            return line[len("a=mid:") :].strip()
    return None


def rejected_mids(sdp: str) -> set[str]:
    """The mids of the media sections an SDP rejects (port 0)."""
    _, media = sections(sdp)
    return {
        mid
        for lines in media
        if lines[0].split()[1] == "0" and (mid := section_mid(lines)) is not None
    }


TRANSPORT_ATTRIBUTES = ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:")


def transport_lines(sdp: str) -> list[str]:
    """The ICE credentials, DTLS fingerprint and setup role of an SDP, one line each."""
    found: dict[str, str] = {}
    for line in sdp.splitlines():
        for prefix in TRANSPORT_ATTRIBUTES:
            if line.startswith(prefix):
                found.setdefault(prefix, line)
    return list(found.values())


def complete_rejected_sections(sdp: str, transport: list[str]) -> str:
    """Gives the rejected sections of an offer the connection's transport attributes.

    A rejected section (port 0) needs no ICE or DTLS attributes, and the server sends none, but
    aiortc refuses any section without ICE credentials and rtcp-mux. The credentials of the
    connection's earlier offers (one ufrag/pwd per connection) satisfy it without restarting ICE.
    """
    session, media = sections(sdp)
    out = list(session)
    for lines in media:
        out += lines
        if lines[0].split()[1] == "0":
            present = {prefix for prefix in TRANSPORT_ATTRIBUTES for line in lines if line.startswith(prefix)}
            out += [line for line in transport if not any(line.startswith(p) for p in present)]
            if "a=rtcp-mux" not in lines:
                out.append("a=rtcp-mux")
    return "\r\n".join(out) + "\r\n"


def reject_in_answer(sdp: str, mids: set[str]) -> str:
    """Rejects `mids` in an answer as well: port 0, only a=mid and a=inactive kept, and out of
    the BUNDLE group (RFC 8829 §5.3.1, RFC 8843 §7.3.3). aiortc answers every section it is
    offered as if it were live, even when the offer rejected it."""
    if not mids:
        return sdp
    session, media = sections(sdp)
    out: list[str] = []
    for line in session:
        if line.startswith("a=group:BUNDLE"):
            kept = [m for m in line[len("a=group:BUNDLE") :].split() if m not in mids]
            line = "a=group:BUNDLE " + " ".join(kept) if kept else ""
        if line:
            out.append(line)
    for lines in media:
        mid = section_mid(lines)
        if mid in mids:
            kind, _port, proto, *fmts = lines[0][2:].split()
            out.append(f"m={kind} 0 {proto} {' '.join(fmts)}")
            out += [line for line in lines if line.startswith("c=")]
            out += [f"a=mid:{mid}", "a=inactive"]
        else:
            out += lines
    return "\r\n".join(out) + "\r\n"


def negotiated_codecs(sdp: str) -> dict[str, str]:
    """mid → the first codec named in each live media section of an answer."""
    _, media = sections(sdp)
    result = {}
    for lines in media:
        fields = lines[0].split()
        mid = section_mid(lines)
        if mid is None or fields[1] == "0" or len(fields) < 4:
            continue
        first = fields[3]
        for line in lines:
            if line.startswith(f"a=rtpmap:{first} "):
                result[mid] = line.split(" ", 1)[1].split("/")[0]
    return result


# ------------------------------------------------------------------------------------------------
# The participant

@dataclass
class Received:
    """One track this participant receives on its subscribe connection."""

    mid: str
    participant: int
    source: str
    kind: str
    task: asyncio.Task | None = None
    frames: int = 0


@dataclass
class Participant:
    args: argparse.Namespace
    ws: Any = None
    you: int | None = None
    moderator: bool = False
    admitted: set[int] = field(default_factory=set)
    publish_pc: RTCPeerConnection | None = None
    camera: MovingPattern | None = None
    subscribe_pc: RTCPeerConnection | None = None
    offers: asyncio.Queue = field(default_factory=asyncio.Queue)
    # mid → what the server said arrives there, from the latest subscribe_offer
    received: dict[str, Received] = field(default_factory=dict)
    # ICE and DTLS attributes of the server's side of the subscribe connection
    subscribe_transport: list[str] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    failure: str | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if self.args.verbose and "sdp" in message:
            emit("sdp_sent", type=message["type"], sdp=message["sdp"])
        await self.ws.send(json.dumps(message))

    def fail(self, message: str) -> None:
        if self.failure is None:
            self.failure = message
            emit("fatal", message=message)
        self.stopping.set()

    # -- signalling ---------------------------------------------------------------------------

    async def run(self) -> None:
        url = urlsplit(self.args.url)
        if url.scheme != "https" or not url.hostname:
            raise SystemExit(f"--url must be https://HOST:PORT/, got {self.args.url!r}")
        origin = f"https://{url.netloc}"
        tls = ssl.create_default_context(cafile=self.args.ca_file)
        async with connect(
            f"wss://{url.netloc}/signal",
            ssl=tls,
            origin=origin,
            open_timeout=20,
            max_size=1 << 20,
        ) as ws:
            self.ws = ws
            emit("connected", url=f"wss://{url.netloc}/signal")
            workers = [
                asyncio.create_task(self.read_loop()),
                asyncio.create_task(self.keepalive()),
                asyncio.create_task(self.answer_offers()),
                asyncio.create_task(self.report_sent()),
            ]
            await self.send({
                "type": "join", "protocol": PROTOCOL_VERSION,
                "room": self.args.room, "name": self.args.name,
            })
            try:
                await self.stopping.wait()
            finally:
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                if self.failure is None:
                    try:
                        await self.send({"type": "leave"})
                    except ConnectionClosed:
                        pass
                await self.close_media()

    async def keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_SECONDS)
            await self.send({"type": "ping"})

    async def read_loop(self) -> None:
        try:
            async for raw in self.ws:
                if isinstance(raw, bytes):
                    self.fail("the server sent a binary frame")
                    return
                await self.handle(json.loads(raw))
        except ConnectionClosed:
            pass
        except Exception as error:  # report, then stop: a test must see why
            self.fail(f"signalling: {type(error).__name__}: {error}")
            return
        emit("closed", code=self.ws.close_code, reason=self.ws.close_reason)
        if not self.stopping.is_set():
            self.fail("the server closed the signalling connection")

    async def handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if self.args.verbose and "sdp" in message:
            emit("sdp_received", type=kind, sdp=message["sdp"])
        if kind == "welcome":
            emit("welcome", protocol=message.get("protocol"))
        elif kind == "joined":
            self.you = message["you"]
            self.moderator = message["role"] == "moderator"
            emit("joined", you=self.you, role=message["role"], room=message["room"],
                 participants=[p["id"] for p in message["participants"]])
            if self.moderator:
                await self.admit(message.get("lobby", []))
            await self.start_publishing()
        elif kind == "lobby_waiting":
            emit("lobby_waiting", room=message["room"])
        elif kind == "lobby_rejected":
            self.fail("a moderator rejected this participant")
        elif kind == "lobby_changed":
            emit("lobby", waiting=[p["id"] for p in message["lobby"]])
            await self.admit(message["lobby"])
        elif kind == "participant_joined":
            person = message["participant"]
            emit("participant_joined", participant=person["id"], name=person["name"])
        elif kind == "participant_left":
            emit("participant_left", participant=message["participant"], reason=message["reason"])
        elif kind == "publish_answer":
            await self.apply_publish_answer(message["sdp"])
        elif kind == "subscribe_offer":
            await self.offers.put(message)
        elif kind == "error":
            emit("error", code=message.get("code"), message=message.get("message"))
            # Only a stale answer is part of normal operation (the next offer follows); any other
            # error means this client or the server got the protocol wrong.
            if message.get("code") != "stale_answer":
                self.fail(f"the server answered with the error {message.get('code')}")
        elif kind in {"removed", "meeting_ended"}:
            emit(kind)
        elif kind in {"pong", "chat", "participant_updated", "room_state", "mute_requested", "left"}:
            pass
        else:
            emit("unhandled", type=kind)

    async def admit(self, lobby: list[dict[str, Any]]) -> None:
        if not (self.args.admit_lobby and self.moderator):
            return
        for person in lobby:
            if person["id"] not in self.admitted:
                self.admitted.add(person["id"])
                await self.send({"type": "admit", "participant": person["id"]})
                emit("admitted", participant=person["id"], name=person["name"])

    # -- publish connection -------------------------------------------------------------------

    async def start_publishing(self) -> None:
        pc = self.publish_pc = peer_connection()
        self.watch(pc, "publish")
        self.camera = MovingPattern()
        transceiver = pc.addTransceiver(self.camera, direction="sendonly")
        restrict_video_codec(transceiver, self.args.video_codec)
        report_feedback(transceiver.sender)
        await pc.setLocalDescription(await pc.createOffer())  # gathers the host candidates
        await self.send({
            "type": "publish",
            "sdp": pc.localDescription.sdp,
            "tracks": [{"mid": transceiver.mid, "source": "camera"}],
        })
        await self.send({"type": "media_state", "microphone": False, "camera": True, "screen": False})
        emit("publish_offered", mid=transceiver.mid)

    async def apply_publish_answer(self, sdp: str) -> None:
        if self.publish_pc is None:
            self.fail("publish_answer without a publish offer")
            return
        await self.publish_pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        codecs = negotiated_codecs(sdp)
        emit("published", codecs=codecs, rejected=sorted(rejected_mids(sdp)))
        if not codecs:
            self.fail("the server rejected the camera track")

    async def report_sent(self) -> None:
        while True:
            await asyncio.sleep(PROGRESS_SECONDS * 5)
            if self.camera is not None:
                emit("sent", frames=self.camera.frames)

    # -- subscribe connection -----------------------------------------------------------------

    async def answer_offers(self) -> None:
        """Answers subscribe offers one at a time, in the order they arrive."""
        while True:
            offer = await self.offers.get()
            try:
                await self.answer_offer(offer)
            except Exception as error:
                self.fail(f"subscribe_offer {offer.get('version')}: {type(error).__name__}: {error}")
                return

    async def answer_offer(self, offer: dict[str, Any]) -> None:
        if self.subscribe_pc is None:
            self.subscribe_pc = peer_connection()
            self.watch(self.subscribe_pc, "subscribe")
            self.subscribe_pc.on("track", self.on_track)
        pc = self.subscribe_pc
        listed = {t["mid"]: t for t in offer["tracks"]}
        for mid in [m for m in self.received if m not in listed]:
            self.end_track(self.received.pop(mid), "not in the offer any more")
        for mid, track in listed.items():
            if mid not in self.received:
                self.received[mid] = Received(
                    mid=mid, participant=track["participant"], source=track["source"], kind=track["kind"])

        rejected = rejected_mids(offer["sdp"])
        self.subscribe_transport = transport_lines(offer["sdp"]) or self.subscribe_transport
        sdp = complete_rejected_sections(offer["sdp"], self.subscribe_transport)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        answer = reject_in_answer(pc.localDescription.sdp, rejected)
        await self.send({"type": "subscribe_answer", "version": offer["version"], "sdp": answer})
        emit("subscribed", version=offer["version"], tracks=offer["tracks"], rejected=sorted(rejected))
        # A section can be offered before its track event fires; start any still-idle consumers.
        for transceiver in pc.getTransceivers():
            track = transceiver.receiver.track
            if track is not None and transceiver.mid in self.received:
                self.consume(transceiver.mid, track)

    def on_track(self, track: MediaStreamTrack) -> None:
        for transceiver in self.subscribe_pc.getTransceivers():
            if transceiver.receiver.track is track:
                self.consume(transceiver.mid, track)
                return

    def consume(self, mid: str | None, track: MediaStreamTrack) -> None:
        entry = self.received.get(mid)
        if entry is None:
            emit("unlisted_track", mid=mid, kind=track.kind)
            return
        if entry.task is None:
            emit("track", mid=mid, participant=entry.participant, source=entry.source, kind=entry.kind)
            entry.task = asyncio.create_task(self.count_frames(entry, track))

    async def count_frames(self, entry: Received, track: MediaStreamTrack) -> None:
        """Decoded frames from one track (aiortc hands out frames only after decoding them)."""
        last = 0.0
        size: dict[str, int] = {}
        try:
            while True:
                frame = await track.recv()
                entry.frames += 1
                if isinstance(frame, av.VideoFrame):
                    size = {"width": frame.width, "height": frame.height}
                now = time.monotonic()
                if entry.frames == 1 or now - last >= PROGRESS_SECONDS:
                    last = now
                    emit("frames", participant=entry.participant, source=entry.source,
                         kind=entry.kind, mid=entry.mid, count=entry.frames, **size)
        except MediaStreamError:
            emit("track_ended", participant=entry.participant, source=entry.source,
                 mid=entry.mid, count=entry.frames)

    def end_track(self, entry: Received, why: str) -> None:
        if entry.task is not None:
            entry.task.cancel()
        emit("track_ended", participant=entry.participant, source=entry.source,
             mid=entry.mid, count=entry.frames, why=why)

    # -- both ---------------------------------------------------------------------------------

    def watch(self, pc: RTCPeerConnection, label: str) -> None:
        @pc.on("connectionstatechange")
        def on_state() -> None:
            emit("connection_state", pc=label, state=pc.connectionState)
            if pc.connectionState == "failed":
                self.fail(f"the {label} connection failed")

    async def close_media(self) -> None:
        for entry in self.received.values():
            if entry.task is not None:
                entry.task.cancel()
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()


# ------------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the server's https://HOST:PORT/ URL")
    parser.add_argument("--ca-file", required=True, help="PEM file of the CA to trust for TLS")
    parser.add_argument("--room", required=True)
    parser.add_argument("--name", default="aiortc")
    parser.add_argument("--admit-lobby", action="store_true",
                        help="as moderator, admit everyone who waits in the lobby")
    parser.add_argument("--duration", type=float, default=None,
                        help="leave after this many seconds (default: run until SIGTERM)")
    parser.add_argument("--video-codec", choices=["any", "vp8", "h264"], default="any",
                        help="offer only this codec (default: every codec aiortc has)")
    parser.add_argument("--host-address", action="append", default=None,
                        help="local address for ICE host candidates (repeatable; default 127.0.0.1)")
    parser.add_argument("--verbose", action="store_true", help="aiortc and aioice logs on stderr, every SDP as an event")
    return parser.parse_args(argv)


async def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.WARNING)
    use_host_addresses(args.host_address or ["127.0.0.1"])
    peer = Participant(args)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, peer.stopping.set)
    if args.duration is not None:
        loop.call_later(args.duration, peer.stopping.set)
    try:
        await peer.run()
    except Exception as error:
        peer.fail(f"{type(error).__name__}: {error}")
    emit("stopped", ok=peer.failure is None)
    return 0 if peer.failure is None else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
