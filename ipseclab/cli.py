"""``ipseclab`` command line: ``demo`` runs two peers in memory, ``decode`` dissects captures,
``peer`` runs one peer daemon on UDP with a ZeroMQ control API."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ipseclab.errors import IpsecLabError
from ipseclab.trace import MessageEvent, SaEstablished, event_to_dict


def _demo(args: argparse.Namespace) -> int:
    from ipseclab.demo import DemoOptions, run_demo
    from ipseclab.export import write_keys, write_pcap

    version = 2 if args.ike == "v2" else 1
    if version == 2 and args.mode == "aggressive":
        print("--mode aggressive is IKEv1's: IKEv2 has one way to set up an IKE SA", file=sys.stderr)
        return 2
    if (args.eap or args.xauth or args.wrong_password) and not args.remote_access:
        print("--eap, --xauth and --wrong-password are remote access's: add --remote-access", file=sys.stderr)
        return 2
    if args.eap and version != 2 or args.xauth and version != 1:
        print("--eap is IKEv2's (--ike v2), --xauth IKEv1's (--ike v1)", file=sys.stderr)
        return 2
    if args.push and not (args.remote_access and version == 1):
        print("--push is IKEv1 remote access's Mode Config push: add --remote-access (and --ike v1)", file=sys.stderr)
        return 2
    if args.remote_access and version == 1 and args.mode != "main":
        print("--remote-access with IKEv1 uses Main Mode", file=sys.stderr)
        return 2
    if args.pq and version != 2:
        print("--pq needs --ike v2: the additional ML-KEM exchange runs in IKEv2's IKE_INTERMEDIATE (RFC 9242)", file=sys.stderr)
        return 2
    opts = DemoOptions(
        version=version,
        pq={"mlkem768": 36, "mlkem1024": 37}.get(args.pq or ""),
        remote_access=args.remote_access,
        eap=args.eap or args.xauth or args.wrong_password,
        wrong_password=args.wrong_password,
        push=args.push,
        mode=args.mode,
        auth=args.auth,
        pfs=args.pfs,
        policies=args.policies,
        mismatch=args.mismatch,
        wrong_psk=args.wrong_psk,
        seed=args.seed,
        nat=args.nat,
        encap=args.encap,
    )
    ping = None
    if args.netns or args.containers:
        outcome = _run_netns(opts, args)
        if isinstance(outcome, int):
            return outcome
        events, ok, explanation, wire_note, ping = outcome
    else:
        run = run_demo(opts)
        events, ok, explanation, wire_note = run.network.events, run.established(), run.explanation(), ""
        if args.ping and ok:
            from ipseclab.esp.ping import ping_through_sas

            ping = ping_through_sas(run, args.ping)
    if args.json:
        for e in events:
            print(json.dumps(event_to_dict(e)))
        result = {"kind": "result", "established": ok, "explanation": [] if ok else explanation}
        if ping is not None:
            result["ping"] = {"sent": ping.sent, "received": ping.received, "lost": ping.lost}
        print(json.dumps(result))
    else:
        where = "memory"
        if args.netns or args.containers:
            where = f"{'containers' if args.containers else 'network namespaces'} ({args.topology})"
        _print_demo(events, opts, ok, explanation, where=where)
        if ping is not None:
            print("\n".join(ping.lines[:20] + ([f"... {len(ping.lines) - 20} more"] if len(ping.lines) > 20 else [])))
            print(f"ping {ping.src} -> {ping.dst} through ESP: {ping.sent} sent, {ping.received} received, {ping.lost} lost")
    if args.pcap and not (args.netns or args.containers):
        n = write_pcap(events, args.pcap, extra=ping.wire if ping is not None else ())
        if not args.json:
            print(f"wrote {n} packets to {args.pcap}")
    if wire_note and not args.json:
        print(wire_note)
    if args.keys:
        paths = write_keys(events, args.keys)
        if not args.json:
            print(f"wrote Wireshark key tables: {', '.join(str(p) for p in paths.values())}")
    if ping is not None and ping.lost:
        return 1
    return 0 if ok else 1


def _run_netns(opts, args: argparse.Namespace):  # noqa: ANN001, ANN202
    """The demo over real UDP between daemons in namespaces (root): the pcap is taken on left's
    veth.  ``--containers`` runs the same daemons in the compose stack's containers instead."""
    import tempfile

    from ipseclab.runtime.netlab.peers import NetLab

    if os.geteuid() != 0:
        what = "containers (rootful podman)" if args.containers else "network namespaces"
        print(f"ipseclab demo --{'containers' if args.containers else 'netns'} needs root (it builds {what})", file=sys.stderr)
        return 2
    name = f"demo{os.getpid() % 100000}"
    if args.containers:
        from ipseclab.runtime.containers.stack import ContainerLab, free_networks

        lab = ContainerLab(name, args.topology, opts, networks=free_networks(args.topology, name))
    else:
        lab = NetLab(name, args.topology, opts, dataplane=bool(args.ping))
    with lab, tempfile.TemporaryDirectory() as tmp:
        left_host = lab.topology.hosts["left"]
        if args.pcap and args.containers:
            lab.capture("left", "eth0", "wire.pcap")
        capture = lab.topology.capture("left", Path(tmp) / "wire.pcap") if args.pcap and not args.containers else None
        events, ok = _negotiate(lab.clients["left"], lab.clients["right"], opts)
        ping = _real_ping(lab, args.ping, containers=args.containers) if ok and args.ping else None
        if ping is not None:  # the data plane's events (ESP packets taken apart, statistics, drops)
            events = _merged_events(lab.clients["left"], lab.clients["right"])
        if args.pcap:
            import shutil

            source = lab.stop_capture("wire.pcap") if args.containers else capture.stop()
            shutil.copyfile(source, args.pcap)
        where = f"container {left_host.netns}" if args.containers else f"{left_host.netns}"
        note = f"captured the wire on {where}:{left_host.interface} into {args.pcap}" if args.pcap else ""
        from ipseclab.trace_queries import failure_lines

        return events, ok, failure_lines(events), note, ping


def _merged_events(left, right) -> list:  # noqa: ANN001
    return sorted(left.events_since(0) + right.events_since(0), key=lambda e: (e.time, e.peer, e.seq))


def _negotiate(left, right, opts) -> tuple[list, bool]:  # noqa: ANN001
    """Left initiates; wait until every Quick Mode is up or a failure has been quiet for 1 s."""
    import time

    from ipseclab.trace_queries import established_from_events, failure_lines

    left.initiate("site")
    events: list = []
    deadline, quiet_since, seen = time.monotonic() + 20, time.monotonic(), 0
    while time.monotonic() < deadline:
        events = _merged_events(left, right)
        if len(events) != seen:
            seen, quiet_since = len(events), time.monotonic()
        if established_from_events(events, ["left", "right"], opts.policies):
            break
        if failure_lines(events) and time.monotonic() - quiet_since > 1.0:
            break
        time.sleep(0.1)
    return events, established_from_events(events, ["left", "right"], opts.policies)


def _real_ping(lab, count: int, *, containers: bool = False):  # noqa: ANN001, ANN202
    """``ping -c count`` (iputils) in left's namespace or container from its protected address
    to right's: through left's TUN, ESP on the wire, right's TUN and back."""
    from ipseclab.esp.ping import PingResult
    from ipseclab.runtime.netlab.pinger import ping

    topo = lab.topology
    # a remote-access client sends from the virtual IP the gateway gave it
    vip = next((s["virtual_ip"] for s in lab.clients["left"].list_sas()["isakmp"] if s.get("virtual_ip")), None)
    if containers:
        stats = lab.ping(count, src=vip)
    else:
        stats = ping(topo, "left", vip or topo.hosts["left"].protected[0], topo.hosts["right"].protected[0], count)
    return PingResult(sent=stats.sent, received=stats.received, src=stats.src, dst=stats.dst, lines=stats.lines)


def _print_demo(events, opts, ok: bool, explanation: list[str], *, where: str = "memory") -> None:  # noqa: ANN001
    auth = "RSA signatures" if opts.auth == "rsa" else "pre-shared key"
    pfs = f"PFS group {opts.pfs}" if opts.pfs else "no PFS"
    seed = f", seed {opts.seed}" if opts.seed is not None else ""
    v2 = getattr(opts, "version", 1) == 2
    how = "IKEv2" if v2 else f"IKEv1 {opts.mode} mode"
    print(
        f"{how}, {auth}, {opts.policies} IPsec polic{'y' if opts.policies == 1 else 'ies'}, "
        f"{pfs}{seed}, in {where}"
    )
    n = 0
    for e in events:
        if isinstance(e, MessageEvent) and e.direction == "sent":
            n += 1
            other = "right" if e.peer == "left" else "left"
            again = "  (retransmission)" if e.retransmission else ""
            print(
                f"{n:3d}  {e.peer:>5} -> {other:<5}  {e.exchange:<15} #{e.index}  {e.summary:<45}"
                f"  {e.src[0]}:{e.src[1]} -> {e.dst[0]}:{e.dst[1]}{again}"
            )
    for e in events:
        if isinstance(e, SaEstablished) and e.peer == "left":
            if (i := e.ike) is not None:
                if v2:
                    vip = f"; virtual IP {i.virtual_ip} from the gateway's pool" if i.virtual_ip else ""
                    auth = f"the gateway by {i.auth}, left by EAP-MD5 as {i.eap_id!r}" if i.eap_id else i.auth
                    print(f"IKE SA established: {i.encryption}, {i.integrity}, {i.hash}, {auth}, DH group {i.group}, "
                          f"lifetime {i.lifetime} s{vip}")
                else:
                    print(f"phase 1: ISAKMP SA established: {i.encryption}, {i.hash}, {i.auth}, DH group {i.group}, lifetime {i.lifetime} s")
            elif (c := e.child) is not None:
                print(
                    f"{'child SA' if v2 else 'phase 2'}: {c.child}: {c.local_ts} <-> {c.remote_ts}  SPI in {c.spi_in} out {c.spi_out}  "
                    f"ESP {c.encryption} {c.integrity} {c.mode}"
                )
    if ok:
        print("result: the IKE SA and all child SAs established" if v2 else "result: phase 1 and all Quick Modes established")
    else:
        print("result: FAILED")
        for line in explanation:
            print("  " + line)


def _decode(args: argparse.Namespace) -> int:
    from ipseclab.teaching.decode import (
        capture_problem,
        decode_pcap,
        read_esp_table,
        read_ikev2_table,
        read_key_table,
        render_packet,
    )

    keys = read_key_table(args.keys) if args.keys else {}
    esp_keys = read_esp_table(args.keys) if args.keys else {}
    ikev2_keys = read_ikev2_table(args.keys) if args.keys else {}
    try:
        packets = decode_pcap(args.file, keys, esp_keys, ikev2_keys)
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - scapy raises its own types for non-pcap input
        print(f"cannot read {args.file} as a capture: {exc}", file=sys.stderr)
        return 2
    if args.json:
        for p in packets:
            print(json.dumps(p.as_dict()))
    else:
        for p in packets:
            print("\n".join(render_packet(p, tree=not args.brief)))
            if not args.brief:
                print()
    problem = capture_problem(args.file)
    if problem is not None:  # like tshark: what could be decoded is printed, the exit code says the rest
        print(f"ipseclab decode: {args.file}: {problem}", file=sys.stderr)
        return 2
    return 0


def _peer(args: argparse.Namespace) -> int:
    from ipseclab.runtime.config_toml import load_peer_config
    from ipseclab.runtime.daemon import run_daemon

    config = load_peer_config(Path(args.config))
    run_daemon(
        config,
        args.control,
        args.events,
        include_secrets=not args.no_secrets,
        hold=args.hold,
        seed=args.seed,
        announce=lambda line: print(line, flush=True),
        dataplane=args.dataplane,
        tun=args.tun,
        history=args.history,
        curve=args.curve,
    )
    return 0


def _interop(args: argparse.Namespace) -> int:
    from ipseclab.runtime.netlab.interop import SCENARIOS, run_scenarios
    from ipseclab.runtime.netlab.life_interop import LIFE_SCENARIOS, run_life_scenario

    if args.list:
        for scen in SCENARIOS.values():
            print(f"{scen.name:34} expect {scen.expect:4}  {scen.description}")
        for life in LIFE_SCENARIOS.values():
            print(f"{life.name:34} (--life)     {life.description}")
        return 0
    unknown = [n for n in args.scenario or () if n not in SCENARIOS and n not in LIFE_SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("ipseclab interop needs root (it builds network namespaces and runs charon)", file=sys.stderr)
        return 2
    import tempfile

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="ipseclab-interop-"))
    chosen = args.scenario or []
    handshakes = [n for n in chosen if n in SCENARIOS] if chosen else (None if not args.life else [])
    lives = [n for n in chosen if n in LIFE_SCENARIOS] if chosen else (list(LIFE_SCENARIOS) if args.life else [])
    rows = []
    if handshakes is None or handshakes:
        rows += [(r.scenario, r.passed, r.seconds, r.summary) for r in run_scenarios(handshakes, out)]
    for name in lives:
        r = run_life_scenario(name, out)
        rows.append((r.scenario, r.passed, r.seconds, r.verdict))
    width = max(len(row[0]) for row in rows)
    print(f"{'scenario':{width}}  result  seconds  verdict")
    for name, passed, seconds, verdict in rows:
        print(f"{name:{width}}  {'PASS' if passed else 'FAIL':6}  {seconds:7.2f}  {verdict}")
    print(f"evidence (captures, key tables, charon logs, result.json) in {out}/<scenario>/")
    return 0 if all(row[1] for row in rows) else 1


def _instructor(args: argparse.Namespace) -> int:
    """Serve the projector page (``labs/instructor/projector.ipynb``) with Voilà: no code cells."""
    import shutil
    import subprocess

    page = Path(__file__).resolve().parents[1] / "labs" / "instructor" / "projector.ipynb"
    voila = shutil.which("voila", path=str(Path(sys.executable).parent)) or shutil.which("voila")
    if voila is None or not page.exists():
        print("ipseclab instructor needs Voilà and labs/instructor/projector.ipynb (make lab installs both)", file=sys.stderr)
        return 2
    env = dict(os.environ, IPSECLAB_PEERS=args.peers, IPSECLAB_SCENARIO=args.scenario, IPSECLAB_SEED=str(args.seed))
    argv = [voila, "--no-browser", f"--port={args.port}", f"--Voila.ip={args.ip}", str(page)]
    print(f"the projector page: http://{args.ip}:{args.port}/  (peers: {args.peers}, scenario: {args.scenario}); Ctrl+C ends it")
    return subprocess.run(argv, env=env, check=False).returncode


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ipseclab", description="A lab kit that teaches IPsec by running it.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run two peers in memory and show every message")
    demo.add_argument("--ike", default="v1", choices=["v1", "v2"])
    demo.add_argument("--mode", default="main", choices=["main", "aggressive"])
    demo.add_argument("--remote-access", action="store_true",
                      help="left is a road-warrior client that gets a virtual IP from right's pool 10.3.0.0/24 "
                      "(IKEv2: Configuration payload; IKEv1: Mode Config)")
    demo.add_argument("--eap", action="store_true",
                      help="remote access: the client proves itself with a password by EAP-MD5 (the gateway by --auth)")
    demo.add_argument("--xauth", action="store_true",
                      help="IKEv1 remote access: the user logs in with a password by XAUTH after Main Mode (the device by --auth)")
    demo.add_argument("--push", action="store_true",
                      help="IKEv1 remote access: Mode Config push — the gateway sends the address unasked (SET/ACK)")
    demo.add_argument("--wrong-password", action="store_true", help="remote access with EAP or XAUTH: the client's password is wrong")
    demo.add_argument("--pq", nargs="?", const="mlkem768", choices=["mlkem768", "mlkem1024"],
                      help="IKEv2: a post-quantum ML-KEM exchange after the DH group (RFC 9242 IKE_INTERMEDIATE, RFC 9370)")
    demo.add_argument("--auth", default="psk", choices=["psk", "rsa"])
    demo.add_argument("--pfs", type=int, metavar="GROUP", help="Quick Mode PFS with this DH group")
    demo.add_argument("--policies", type=int, default=1, metavar="N", help="number of IPsec policies (one Quick Mode each)")
    demo.add_argument("--mismatch", action="store_true", help="give the responder a policy that does not match")
    demo.add_argument("--wrong-psk", action="store_true", help="give the responder a different pre-shared key")
    demo.add_argument("--seed", type=int, help="reproducible cookies, nonces, SPIs and DH keys")
    demo.add_argument("--pcap", metavar="FILE", help="write the exchange as a pcap")
    demo.add_argument("--keys", metavar="DIR", help="write Wireshark's ikev1_decryption_table and esp_sa")
    demo.add_argument("--json", action="store_true", help="print the trace events as JSON lines")
    demo.add_argument("--nat", action="store_true", help="in memory: put left behind a simulated NAT (IKE floats to 4500)")
    demo.add_argument("--encap", action="store_true", help="force UDP encapsulation without a NAT (like strongSwan's encap=yes)")
    demo.add_argument("--netns", action="store_true", help="run the peers as daemons in network namespaces over real UDP (root)")
    demo.add_argument("--containers", action="store_true",
                      help="run the peers as daemons in containers (the compose stack in containers/; root, podman or docker)")
    demo.add_argument("--topology", default="site-to-site", choices=["site-to-site", "nat"],
                      help="with --netns or --containers: the lab's topology (nat: left behind an nftables NAT router)")
    demo.add_argument("--ping", type=int, default=0, metavar="N", help="after the SAs are up, send N pings through ESP (exit 1 if any is lost)")
    demo.set_defaults(func=_demo)
    lab = sub.add_parser("lab", help="network labs in namespaces with a peer daemon per host (root)")
    from ipseclab.runtime.netlab.labcli import add_lab_parser

    add_lab_parser(lab)
    dec = sub.add_parser("decode", help="take apart every ISAKMP message of a capture")
    dec.add_argument("file", metavar="FILE.pcap")
    dec.add_argument("--keys", metavar="DIR", help="directory with an ikev1_decryption_table, ikev2_decryption_table and/or esp_sa table (Wireshark's formats)")
    dec.add_argument("--json", action="store_true", help="one JSON object per packet")
    dec.add_argument("--brief", action="store_true", help="one line per packet, no payload tree")
    dec.set_defaults(func=_decode)
    peer = sub.add_parser("peer", help="run one peer on UDP, driven over a ZeroMQ control API")
    peer.add_argument("--config", required=True, metavar="FILE", help="the peer's TOML configuration")
    peer.add_argument("--control", required=True, metavar="ADDR", help="command socket, e.g. ipc:///tmp/left.ctl or tcp://127.0.0.1:5555")
    peer.add_argument("--events", metavar="ADDR", help="event stream (PUB) socket, e.g. ipc:///tmp/left.ev")
    peer.add_argument("--no-secrets", action="store_true", help="mask derived keys in events and secrets in the config command")
    peer.add_argument("--hold", action="store_true", help="start in hold mode: outgoing datagrams wait for step")
    peer.add_argument("--seed", type=int, help="reproducible cookies, nonces, SPIs and DH keys (teaching only)")
    peer.add_argument("--dataplane", action="store_true", help="run the ESP data plane: TUN device, raw ESP and ESP-in-UDP (root)")
    peer.add_argument("--tun", metavar="NAME", help="with --dataplane: the TUN device's name (default ipl0)")
    peer.add_argument("--curve", metavar="DIR", help="CURVE key directory: required for tcp:// sockets (keys created 0600 if missing)")
    peer.add_argument("--history", type=int, default=20_000, metavar="N", help="trace events kept for the events command (default 20000)")
    peer.set_defaults(func=_peer)
    ins = sub.add_parser("instructor", help="serve the projector page: one exchange stepped by hand, no code (Voilà)")
    from ipseclab.teaching.peers import MODES

    ins.add_argument("--peers", choices=list(MODES), default="memory", help="where the peers run (namespaces and containers need root)")
    ins.add_argument("--scenario", default="Main Mode", metavar="NAME",
                     help="Main Mode, Aggressive Mode, Main Mode + PFS, NAT traversal, Proposal mismatch, Wrong PSK")
    ins.add_argument("--seed", type=int, default=1, help="the run's seed (cookies, nonces, keys)")
    ins.add_argument("--port", type=int, default=8866)
    ins.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: this machine only)")
    ins.set_defaults(func=_instructor)
    iop = sub.add_parser("interop", help="run ipseclab against strongSwan's charon in a namespace lab (root)")
    iop.add_argument("--scenario", action="extend", nargs="+", metavar="NAME", help="scenario(s) to run (default: all; see --list)")
    iop.add_argument("--out", metavar="DIR", help="where captures, key tables, logs and result.json go (default: a new temporary directory)")
    iop.add_argument("--list", action="store_true", help="list the scenarios and exit")
    iop.add_argument("--life", action="store_true", help="the gateway life-cycle scenarios (rekeys, deletes, DPD, restarts, ...) instead of the handshakes")
    iop.set_defaults(func=_interop)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "policies", 1) < 1:
        parser.error("--policies must be at least 1")
    try:
        return int(args.func(args))
    except IpsecLabError as exc:
        print(f"ipseclab: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader (e.g. `| head`) went away: stop quietly, as command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
