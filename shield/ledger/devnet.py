"""The embedded devnet: an anvil process that outlives the command that started it.

State lives under ``<home>/chain/``: ``state.json`` (anvil ``--state``, saved every
STATE_INTERVAL_S seconds and on a clean stop), ``state.json.bak`` (copy taken before
each start), ``anvil.pid``, ``anvil.log``, ``anvil.port``. A corrupt state file is
reported, never reset.

The port: a configured one (``SHIELD_ANVIL_PORT``, ``anvil_port`` in ``[chain]``) is used
as it is, and a start fails with PortBusyError when another program holds it. Without
one, a home uses the port it recorded in ``anvil.port`` (8545 the first time); when
another program holds it (the devnet of another home, typically), the start takes the
next free port, records it and says so in one warning line. Every command of the home
then talks to the recorded port.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError
from urllib.request import Request, urlopen

from shield.config import DEFAULT_ANVIL_PORT, Settings, find_node_tool
from shield.ledger.errors import DevnetError, PortBusyError, StateCorruptError

__all__ = ["Devnet", "DevnetStatus", "find_anvil", "STATE_INTERVAL_S"]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
#: Seconds between anvil state saves: a crash of the node loses at most this much.
STATE_INTERVAL_S = 2
#: Seconds to wait for a fresh anvil to answer RPC, and for a stopping one to exit.
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
#: How many ports above the wanted one a start tries before giving up.
PORT_SEARCH = 100
#: How many times a start picks a port again when another node binds it first.
START_ATTEMPTS = 3


class _PortTaken(Exception):
    """The node exited at start because its port was bound by another process first."""


def find_anvil(node_bin: Path | None) -> Path:
    """The anvil executable (see :func:`shield.config.find_node_tool`)."""
    found = find_node_tool("anvil", node_bin)
    if found is not None:
        return found
    raise DevnetError("anvil was not found", fix="run `npm ci` in the repository (package.json pins anvil)")


@dataclass(frozen=True)
class DevnetStatus:
    running: bool
    pid: int | None
    url: str
    state_file: Path
    state_bytes: int | None
    block: int | None
    chain_id: int | None
    message: str


def _rpc(url: str, method: str, timeout_s: float = 2.0) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
    req = Request(url, data=body, headers={"Content-Type": "application/json"})
    with urlopen(req, timeout=timeout_s) as resp:  # noqa: S310 - local URL we built
        return json.loads(resp.read())["result"]


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


def _wait_until(done: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``done`` every 50 ms for up to ``timeout_s``; whether it came true."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still "exists": treat it as dead.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def _is_anvil(cmd: list[bytes]) -> bool:
    return any(part.endswith(b"anvil") for part in cmd[:2])


def _is_our_anvil(pid: int, state_file: Path) -> bool:
    cmd = _cmdline(pid)
    return _is_anvil(cmd) and str(state_file).encode() in cmd


def _option(cmd: list[bytes], name: bytes) -> bytes | None:
    """The value following ``name`` in an argv, or None."""
    for flag, value in zip(cmd, cmd[1:]):
        if flag == name:
            return value
    return None


def _port_free(port: int) -> bool:
    """Whether nothing listens on ``port`` and anvil could bind it (it binds with
    SO_REUSEADDR, so a socket of a stopped node in TIME_WAIT does not count)."""
    if _port_open(port):
        return False
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _holder(port: int) -> str:
    """Who listens on ``port``, in words: another shield home's devnet (named by its home)
    when an anvil with a ``--state`` file runs with that port, else another program."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        cmd = _cmdline(int(proc.name))
        if _is_anvil(cmd) and _option(cmd, b"--port") == str(port).encode():
            state = _option(cmd, b"--state")
            if state is not None and Path(state.decode(errors="replace")).parent.name == "chain":
                return f"the devnet of the shield home {Path(state.decode(errors='replace')).parent.parent}"
            return f"another anvil (pid {proc.name})"
    return "another program"


class Devnet:
    """Start, stop and inspect the embedded anvil for ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dir = settings.home / "chain"
        self.state_file = self.dir / "state.json"
        self.pid_file = self.dir / "anvil.pid"
        self.log_file = self.dir / "anvil.log"
        self.port_file = self.dir / "anvil.port"
        self.chain_id = settings.chain.chain_id or 31337
        #: The configured port: fixed, never moved.
        self.fixed_port = settings.chain.anvil_port
        self.port = self._wanted_port()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    # ------------------------------------------------------------------ inspect

    def recorded_port(self) -> int | None:
        """The port in ``anvil.port``, or None when there is none (or it is unreadable)."""
        try:
            port = int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return None
        return port if 0 < port < 65536 else None

    def _wanted_port(self) -> int:
        """Where this home's node listens or will: the port of the running node, else the
        configured one, else the recorded one, else DEFAULT_ANVIL_PORT."""
        pid, ours = self._recorded_pid()  # read only: a verifier changes nothing in the home
        running = _option(_cmdline(pid), b"--port") if pid is not None and ours else None
        if running is not None and running.isdigit():
            return int(running)
        return self.fixed_port or self.recorded_port() or DEFAULT_ANVIL_PORT

    def _record_port(self, port: int) -> None:
        tmp = self.port_file.with_suffix(".port.tmp")
        tmp.write_text(f"{port}\n")
        tmp.replace(self.port_file)

    def _choose_port(self) -> int:
        """The port to start on (see the module docstring).

        Raises:
            PortBusyError: the configured port is taken, or no free port was found.
        """
        wanted = self.port
        if _port_free(wanted):
            return wanted
        holder = _holder(wanted)
        if self.fixed_port is not None:
            raise PortBusyError(f"port {wanted} is already used by {holder}, not this home's devnet",
                                fix="stop that program, set SHIELD_ANVIL_PORT to a free port, "
                                    "or unset it to let shield pick one")
        for port in range(wanted + 1, min(wanted + PORT_SEARCH, 65535) + 1):
            if _port_free(port):
                log.warning("port %d is used by %s; this home's devnet uses port %d from now on (recorded in %s)",
                            wanted, holder, port, self.port_file)
                return port
        raise PortBusyError(f"port {wanted} is used by {holder} and the next {PORT_SEARCH} ports are taken too",
                            fix="set SHIELD_ANVIL_PORT to a free port")

    def _recorded_pid(self) -> tuple[int | None, bool]:
        """(the pid in the pid file, whether that process is alive and is our anvil)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None, False
        return pid, _pid_alive(pid) and _is_our_anvil(pid, self.state_file)

    def running(self) -> bool:
        """Whether the recorded pid is alive and is our anvil; reads only (a verifier changes
        nothing in the home, so a stale pid file stays for :meth:`pid` to clear)."""
        return self._recorded_pid()[1]

    def pid(self) -> int | None:
        """The recorded pid if that process is alive and is our anvil; clears a stale pid file."""
        pid, ours = self._recorded_pid()
        if pid is None or ours:
            return pid
        log.info("removing stale pid file %s (pid %d is gone)", self.pid_file, pid)
        self.pid_file.unlink(missing_ok=True)
        return None

    def status(self) -> DevnetStatus:
        pid = self.pid()
        size = self.state_file.stat().st_size if self.state_file.exists() else None
        block = chain_id = None
        message = "stopped"
        if pid is not None:
            try:
                block = int(str(_rpc(self.url, "eth_blockNumber")), 16)
                chain_id = int(str(_rpc(self.url, "eth_chainId")), 16)
                message = f"running (pid {pid})"
            except (OSError, URLError, ValueError, KeyError):
                message = f"process {pid} runs but does not answer on {self.url}"
        elif _port_open(self.port):
            what = "port" if self.fixed_port is not None else "recorded port" if self.recorded_port() else "default port"
            message = f"stopped; its {what} {self.port} is used by {_holder(self.port)}"
        return DevnetStatus(pid is not None, pid, self.url, self.state_file, size, block, chain_id, message)

    def check_state_file(self) -> None:
        """Raise StateCorruptError if the state file exists but is not a readable anvil dump."""
        if not self.state_file.exists():
            return
        try:
            doc = json.loads(self.state_file.read_bytes())
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise StateCorruptError(
                f"devnet state {self.state_file} is corrupt ({type(exc).__name__}); it was not touched",
                fix=f"restore {self.state_file.name}.bak over it, or move it aside to start an empty chain",
            ) from exc
        if not isinstance(doc, dict) or "accounts" not in doc:
            raise StateCorruptError(
                f"devnet state {self.state_file} is not an anvil state dump; it was not touched",
                fix=f"restore {self.state_file.name}.bak over it, or move it aside to start an empty chain",
            )

    # ------------------------------------------------------------------ control

    def start(self) -> int:
        """Start anvil in its own session (it outlives this process); return its pid.

        Idempotent: returns the running pid if our anvil is already up. The port is
        chosen and recorded as the module docstring says; ``self.port`` is then the one
        the node listens on.

        Raises:
            PortBusyError: another program listens on the configured port (or on every
                port tried).
            StateCorruptError: the state file is unreadable (it is left as it is).
            DevnetError: anvil missing, or it exited / did not answer in START_TIMEOUT_S.
        """
        pid = self.pid()
        self.port = self._wanted_port()
        if pid is not None:
            return pid
        anvil = find_anvil(self.settings.node_bin)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.check_state_file()
        for attempt in range(START_ATTEMPTS):
            port = self._choose_port()
            try:
                return self._launch(anvil, port)
            except _PortTaken:
                # Another node took the port between the check and the bind (two homes
                # starting at once): a configured port is never moved, a chosen one is.
                if self.fixed_port is not None or attempt == START_ATTEMPTS - 1:
                    raise PortBusyError(f"port {port} was taken by {_holder(port)} while this home's devnet started") from None
        raise AssertionError("unreachable")

    def _launch(self, anvil: Path, port: int) -> int:
        """Record ``port``, start the node on it and wait until it answers; its pid.

        Raises:
            _PortTaken: the node exited because something else bound the port first.
            StateCorruptError, DevnetError: as :meth:`start`.
        """
        self.port = port
        self._record_port(port)
        if self.state_file.exists():
            shutil.copy2(self.state_file, self.state_file.with_name(self.state_file.name + ".bak"))
        cmd = [
            str(anvil), "--host", HOST, "--port", str(self.port), "--chain-id", str(self.chain_id),
            "--state", str(self.state_file), "--state-interval", str(STATE_INTERVAL_S),
            "--preserve-historical-states",
        ]
        pid = self._spawn(cmd)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(str(pid))
        tmp.replace(self.pid_file)

        def up_or_exited() -> bool:
            if not _pid_alive(pid):
                return True
            try:
                _rpc(self.url, "eth_chainId", timeout_s=1.0)
            except (OSError, URLError, ValueError, KeyError):
                return False
            return True

        answered = _wait_until(up_or_exited, START_TIMEOUT_S)
        if not _pid_alive(pid):
            self.pid_file.unlink(missing_ok=True)
            tail = self.log_file.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            if "address already in use" in tail[0].lower():
                raise _PortTaken(tail[0])
            if "state" in tail[0].lower():
                raise StateCorruptError(f"anvil could not load {self.state_file}: {tail[0][:200]}",
                                        fix=f"restore {self.state_file.name}.bak over it, or move it aside")
            raise DevnetError(f"anvil exited at start: {tail[0][:200]}")
        if not answered:
            self.stop()
            raise DevnetError(f"anvil did not answer on {self.url} within {START_TIMEOUT_S:.0f}s")
        log.info("devnet started: pid %d on %s", pid, self.url)
        return pid

    def _spawn(self, cmd: list[str]) -> int:
        """Start ``cmd`` detached: a short-lived shell backgrounds it in a new session, so
        the node is not our child (init reaps it) and outlives this process."""
        script = 'log="$1"; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!'
        out = subprocess.run(  # noqa: S603 - fixed argv
            ["/bin/sh", "-c", script, "sh", str(self.log_file), *cmd],
            capture_output=True, text=True, timeout=30, start_new_session=True, check=True,
        )
        return int(out.stdout.strip())

    def stop(self) -> bool:
        """Stop our anvil (SIGTERM, so it saves its state; SIGKILL after STOP_TIMEOUT_S).

        Returns False when it was not running.
        """
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        if not _wait_until(lambda: not _pid_alive(pid), STOP_TIMEOUT_S):
            log.warning("anvil %d ignored SIGTERM; killing it (state saved up to %ds ago)", pid, STATE_INTERVAL_S)
            os.kill(pid, signal.SIGKILL)
        # The main thread can show as exited while the others still hold the socket: wait
        # until the port is free too, so that a start right after this one finds it free.
        _wait_until(lambda: not _pid_alive(pid) and not _port_open(self.port), STOP_TIMEOUT_S)
        self.pid_file.unlink(missing_ok=True)
        return True
