"""`make run` and `make stop`.

`make run` runs this file with any Python 3.11 (`python aiproxy_site/launcher.py --install`):
it checks that no other `make run` of this data directory is running and that its ports are
free, before anything starts; installs the dependencies into `.venv` when the requirements
changed; then re-executes itself in the venv to start the embedded PostgreSQL and Redis
(unless DATABASE_URL / REDIS_URL are set), migrate, set up the demo and start the fake
upstream provider, the embedder, the ASGI server (daphne), a Celery worker and Celery beat.
The terminal shows one line per stage; pip's, the migrations' and each process's output go
to log files under `.aiproxy/logs/`, whose tail is printed when a stage fails.

Each child runs in its own process group, recorded in `.aiproxy/run/<name>.pid` with its
start time, so `make stop` (`python -m aiproxy_site.launcher stop`) finds and stops every
one of them even when the launcher is gone, and never signals a process that merely reuses
a recorded pid. Ctrl-C, or `make stop` from another terminal, stops them all; the embedded
PostgreSQL and Redis keep running until `make stop`.

Only the standard library is imported at module level: the first stage runs before the
venv exists.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
INSTALL_STAMP = ROOT / ".venv" / "bin" / ".installed"  # the Makefile's `install` target uses the same stamp
REQUIREMENTS = (ROOT / "requirements" / "base.txt", ROOT / "requirements" / "dev.txt")
STOP_GRACE_S = 10.0  # TERM, then KILL after this long
LAUNCHER = "launcher"
CONTINUED = "_AIPROXY_LAUNCHER_CONTINUED"  # set across the re-exec into the venv: append to the same log
LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class Ports:
    host: str
    port: int
    fake_port: int

    @classmethod
    def from_env(cls) -> Ports:
        return cls(
            host=os.environ.get("HOST", "127.0.0.1"),
            port=int(os.environ.get("PORT", "8000")),
            fake_port=int(os.environ.get("FAKE_PROVIDER_PORT", "8100")),
        )

    @property
    def url(self) -> str:
        host = "localhost" if self.host in {"0.0.0.0", "::", ""} else self.host
        return f"http://{host}:{self.port}"


def data_dir() -> Path:
    """The same directory as aiproxy_site.embedded.data_dir(), without importing the package."""
    path = Path(os.environ.get("AIPROXY_DATA_DIR") or ROOT / ".aiproxy").resolve()
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
    return path


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


# --- processes ------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, int] | None:
    """(process group, start time in clock ticks) of a live, non-zombie process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # the command name may hold spaces and parentheses
    if fields[0] in {"Z", "X"}:
        return None
    return int(fields[2]), int(fields[19])


def _proc_command(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return "?"
    words = [os.path.basename(argv[0].decode(errors="replace"))] + [a.decode(errors="replace") for a in argv[1:]]
    text = " ".join(words)
    return text if len(text) <= 100 else text[:97] + "..."


def _all_pids() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


@dataclass(frozen=True)
class Tracked:
    """A process `make run` started, as recorded in `.aiproxy/run/<name>.pid`."""

    name: str
    pid: int
    start: int  # /proc/<pid>/stat start time: tells the process from a later one with the same pid

    @property
    def leader_alive(self) -> bool:
        stat = _proc_stat(self.pid)
        return stat is not None and stat[1] == self.start

    def members(self, processes: dict[int, tuple[int, int]] | None = None) -> list[int]:
        """Live processes of its group: a child's pid is its group id, and Linux does not reuse
        the number while the group has members. The launcher has no group of its own."""
        if self.name == LAUNCHER:
            return [self.pid] if self.leader_alive else []
        if not self.leader_alive and _proc_stat(self.pid) is not None:
            return []  # the pid belongs to another process now, so the group is gone
        processes = _processes() if processes is None else processes
        return [pid for pid, (group, start) in processes.items() if group == self.pid and start >= self.start]


def _processes() -> dict[int, tuple[int, int]]:
    """pid -> (process group, start time) of every live process."""
    found = {}
    for pid in _all_pids():
        stat = _proc_stat(pid)
        if stat is not None:
            found[pid] = stat
    return found


def run_dir(root: Path) -> Path:
    return _private_dir(root / "run")


def process_record(*, root: Path, name: str, pid: int) -> Tracked:
    stat = _proc_stat(pid)
    if stat is None:
        raise RuntimeError(f"{name} (pid {pid}) exited at once")
    record = Tracked(name=name, pid=pid, start=stat[1])
    path = run_dir(root) / f"{name}.pid"
    path.write_text(f"{pid} {record.start}\n")
    return record


def process_records(*, root: Path) -> list[Tracked]:
    found = []
    for path in sorted((root / "run").glob("*.pid")):
        try:
            pid, start = (int(x) for x in path.read_text().split())
        except (OSError, ValueError):
            path.unlink(missing_ok=True)
            continue
        found.append(Tracked(name=path.stem, pid=pid, start=start))
    return found


def _forget(root: Path, record: Tracked) -> None:
    (root / "run" / f"{record.name}.pid").unlink(missing_ok=True)


def _signal_group(record: Tracked, sig: int) -> None:
    if record.leader_alive and record.name != LAUNCHER:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(record.pid, sig)
        return
    for pid in record.members():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def processes_stop(*, root: Path, records: list[Tracked], grace: float = STOP_GRACE_S) -> list[Tracked]:
    """TERM each recorded process group, KILL what is left after `grace` seconds, forget
    the records. Returns the ones that were running."""

    def running(among: list[Tracked]) -> list[Tracked]:
        processes = _processes()
        return [r for r in among if r.members(processes)]

    stopping = running(records)
    for record in stopping:
        _signal_group(record, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and running(stopping):
        time.sleep(0.1)
    for record in running(stopping):
        _signal_group(record, signal.SIGKILL)
    while running(stopping) and time.monotonic() < deadline + 5:
        time.sleep(0.05)
    for record in records:
        _forget(root, record)
    return stopping


def tracked_stop(*, root: Path, grace: float = STOP_GRACE_S) -> list[Tracked]:
    """Stop everything a `make run` of this data directory started: the launcher first (it
    stops its children itself), then any child still running (the launcher was killed)."""
    records = process_records(root=root)
    running = [r for r in records if r.members()]
    processes_stop(root=root, records=[r for r in records if r.name == LAUNCHER], grace=grace + 5)
    processes_stop(root=root, records=[r for r in records if r.name != LAUNCHER], grace=grace)
    return running


# --- ports ----------------------------------------------------------------------------------


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen there (SO_REUSEADDR, as daphne and uvicorn set it)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return True  # the server will report the bad host itself
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(address)
            except OSError:
                return False
    return True


def port_owner(port: int) -> tuple[int, str] | None:
    """(pid, command line) of the process holding a TCP port, from /proc, else from `ss`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if int(local.rsplit(":", 1)[1], 16) == port and state in {"0A", "07"} and inode != "0":
                inodes.add(f"socket:[{inode}]")
    for pid in _all_pids() if inodes else ():
        try:
            fds = os.scandir(f"/proc/{pid}/fd")
        except OSError:
            continue
        with fds:
            for fd in fds:
                try:
                    if os.readlink(fd.path) in inodes:
                        return pid, _proc_command(pid)
                except OSError:
                    continue
    if shutil.which("ss"):
        out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True).stdout
        if "pid=" in out:
            pid = int(out.split("pid=", 1)[1].split(",", 1)[0])
            return pid, _proc_command(pid)
    return None


def preflight(*, root: Path, ports: Ports) -> str | None:
    """Why `make run` cannot start here, or None. Runs before anything is started."""
    records = process_records(root=root)
    launcher = next((r for r in records if r.name == LAUNCHER and r.leader_alive), None)
    if launcher is not None:
        return (
            f"AIProxy is already running: `make run` (pid {launcher.pid}) uses {root}.\n"
            "Stop it with `make stop` (or Ctrl-C in its terminal) before starting it again."
        )
    leftovers = [r for r in records if r.members()]
    if leftovers:
        names = ", ".join(f"{r.name} (pid {r.pid})" for r in leftovers)
        return f"processes of an earlier `make run` are still running: {names}.\nStop them with `make stop`."
    for record in records:
        _forget(root, record)
    if ports.port == ports.fake_port:
        return f"PORT and FAKE_PROVIDER_PORT are both {ports.port}: choose two different ports."
    wanted = [
        (ports.host, ports.port, "PORT, the web UI and proxy"),
        ("127.0.0.1", ports.fake_port, "FAKE_PROVIDER_PORT, the fake upstream provider"),
    ]
    for host, port, role in wanted:
        if port_free(host, port):
            continue
        owner = port_owner(port)
        by = f"pid {owner[0]} ({owner[1]})" if owner else f"another process (`ss -ltnp 'sport = :{port}'` shows which)"
        web, fake = _free_ports_near(ports)
        return (
            f"port {port} ({role}) on {host} is already in use by {by}.\n"
            f"Stop that process, or choose free ports: PORT={web} FAKE_PROVIDER_PORT={fake} make run"
        )
    return None


def _free_ports_near(ports: Ports) -> tuple[int, int]:
    """The wanted ports where free, else the next free ones above them."""

    def next_free(host: str, port: int, avoid: set[int]) -> int:
        while port < 65535 and (port in avoid or not port_free(host, port)):
            port += 1
        return port

    web = next_free(ports.host, ports.port, {ports.fake_port})
    return web, next_free("127.0.0.1", ports.fake_port, {web, ports.port})


# --- progress display -------------------------------------------------------------------------


class StageFailed(Exception):
    pass


class Shutdown(BaseException):
    """Ctrl-C or `make stop`: not an error, so no stage catches it as one."""


class Progress:
    """One line per stage on the terminal; everything else (pip, migrations, tracebacks) in the log."""

    def __init__(self, log_path: Path, *, append: bool) -> None:
        _private_dir(log_path.parent)
        self.log_path = log_path
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        self._log_fd = os.open(log_path, flags, 0o600)
        sys.stdout.flush()
        sys.stderr.flush()
        self.terminal: IO[str] = os.fdopen(os.dup(1), "w", buffering=1)
        self._saved_stderr = os.dup(2)
        os.dup2(self._log_fd, 1)
        os.dup2(self._log_fd, 2)

    def say(self, text: str) -> None:
        self.terminal.write(text + "\n")
        self.terminal.flush()

    @contextlib.contextmanager
    def stage(self, label: str) -> Iterator[None]:
        self.terminal.write(f"{label}... ")
        self.terminal.flush()
        print(f"\n=== {label}", flush=True)
        started = time.monotonic()
        try:
            yield
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | Shutdown):
                self.say("interrupted")
                raise
            traceback.print_exc()
            sys.stdout.flush()
            sys.stderr.flush()
            self.say("failed")
            self.tail(self.log_path)
            raise StageFailed(label) from exc
        took = time.monotonic() - started
        self.say(f"done ({took:.0f} s)" if took >= 2 else "done")

    def tail(self, path: Path) -> None:
        self.terminal.write(f"--- last lines of {path} ---\n{_tail(path)}")
        self.say(f"--- full log: {path}")

    def close(self) -> None:
        """Give the terminal back to stdout and stderr."""
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self.terminal.fileno(), 1)
        os.dup2(self._saved_stderr, 2)
        os.close(self._saved_stderr)
        os.close(self._log_fd)


# --- make run ---------------------------------------------------------------------------------


def _install_needed() -> bool:
    if not VENV_PYTHON.exists() or not INSTALL_STAMP.exists():
        return True
    stamp = INSTALL_STAMP.stat().st_mtime
    return any(req.stat().st_mtime > stamp for req in REQUIREMENTS)


def dependencies_install(progress: Progress) -> None:
    if not VENV_PYTHON.exists():
        with progress.stage("creating the virtualenv (.venv)"):
            subprocess.run([sys.executable, "-m", "venv", str(ROOT / ".venv")], check=True)
    if _install_needed():
        with progress.stage("installing dependencies (pip)"):
            subprocess.run(
                [str(ROOT / ".venv" / "bin" / "pip"), "install", "-r", str(REQUIREMENTS[1])], cwd=ROOT, check=True
            )
            INSTALL_STAMP.touch()


def _wait_http(url: str, children: dict[str, subprocess.Popen[bytes]], root: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, child in children.items():
            if child.poll() is not None:
                log = child_log(root, name)
                print(f"--- {name} exited with code {child.returncode}; the end of {log}:\n{_tail(log)}", flush=True)
                raise RuntimeError(f"{name} exited with code {child.returncode}; see {log}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f}s")


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
    except OSError:
        lines = []
    return "".join(f"  {line}\n" for line in lines)


def child_log(root: Path, name: str) -> Path:
    return root / "logs" / f"{name}.log"


def child_commands(ports: Ports, root: Path) -> dict[str, list[str]]:
    py = sys.executable
    fake = f"uvicorn gateway.fake_provider:app --host 127.0.0.1 --port {ports.fake_port} --log-level warning"
    return {
        "fake-provider": [py, "-m", *fake.split()],
        "embedder": [py, "-m", "gateway.hotpath.embedder"],
        "web": [py, "-m", "daphne", "-b", ports.host, "-p", str(ports.port), "aiproxy_site.asgi:application"],
        "worker": [py, "-m", *"celery -A aiproxy_site worker --loglevel WARNING --concurrency 2".split()],
        "beat": [
            py,
            "-m",
            *"celery -A aiproxy_site beat --loglevel WARNING --schedule".split(),
            str(root / "celerybeat-schedule"),
        ],
    }


def child_start(*, root: Path, name: str, command: list[str]) -> tuple[subprocess.Popen[bytes], Tracked]:
    """Start a child in its own process group, its output in `.aiproxy/logs/<name>.log`, and record it."""
    _private_dir(root / "logs")
    log = os.open(child_log(root, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        child = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        os.close(log)
    return child, process_record(root=root, name=name, pid=child.pid)


def _lock(root: Path) -> int | None:
    """Held for the launcher's lifetime; the kernel lets go of it however the launcher ends."""
    fd = os.open(run_dir(root) / "launcher.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def run(*, install: bool) -> int:
    root = data_dir()
    ports = Ports.from_env()
    problem = preflight(root=root, ports=ports)
    if problem:
        print(problem, file=sys.stderr)
        return 1
    log_path = root / "logs" / "make-run.log"
    if install:
        progress = Progress(log_path, append=False)
        try:
            dependencies_install(progress)
        except StageFailed:
            return 1
        finally:
            progress.close()
        os.chdir(ROOT)
        os.execve(str(VENV_PYTHON), [str(VENV_PYTHON), "-m", "aiproxy_site.launcher"], {**os.environ, CONTINUED: "1"})
    lock = _lock(root)
    if lock is None:
        print(
            f"AIProxy is already running: another `make run` uses {root}.\nStop it with `make stop`.", file=sys.stderr
        )
        return 1
    progress = Progress(log_path, append=os.environ.pop(CONTINUED, "") == "1")
    children: dict[str, subprocess.Popen[bytes]] = {}
    records: list[Tracked] = [process_record(root=root, name=LAUNCHER, pid=os.getpid())]

    def shutdown(*_: object) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        progress.terminal.write("stopping AIProxy... ")
        progress.terminal.flush()
        processes_stop(root=root, records=records[1:])
        _forget(root, records[0])
        progress.say("stopped (PostgreSQL and Redis keep running until `make stop`)")
        raise Shutdown

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    try:
        _start(progress, root=root, ports=ports, children=children, records=records)
    except StageFailed:
        processes_stop(root=root, records=records[1:])
        _forget(root, records[0])
        return 1
    finally:
        progress.close()
    print("AIProxy ready", flush=True)
    while True:
        for name, child in children.items():
            if child.poll() is not None:
                log = child_log(root, name)
                print(
                    f"{name} exited with code {child.returncode}; stopping. The end of {log}:\n{_tail(log)}",
                    file=sys.stderr,
                    flush=True,
                )
                processes_stop(root=root, records=records[1:])
                _forget(root, records[0])
                return 1
        time.sleep(1)


def _start(
    progress: Progress,
    *,
    root: Path,
    ports: Ports,
    children: dict[str, subprocess.Popen[bytes]],
    records: list[Tracked],
) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aiproxy_site.settings")
    os.environ.setdefault("FAKE_PROVIDER_URL", f"http://127.0.0.1:{ports.fake_port}")
    os.environ.setdefault("SITE_URL", ports.url)  # links in emails point at this server
    if not os.environ.get("DATABASE_URL"):
        with progress.stage("starting PostgreSQL"):
            from aiproxy_site.embedded import postgres_url

            postgres_url()
    if not os.environ.get("REDIS_URL"):
        with progress.stage("starting Redis"):
            from aiproxy_site.embedded import redis_url

            redis_url()
    with progress.stage("migrating"):
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        # children talk to the same servers
        os.environ["DATABASE_URL"] = settings.DATABASE_URL
        os.environ["REDIS_URL"] = settings.REDIS_URL
        call_command("migrate_schemas", "--shared", verbosity=1)
        call_command("migrate_schemas", "--tenant", verbosity=1)
    with progress.stage("setting up the demo workspace"):
        call_command("demo_setup", base_url=ports.url, verbosity=1)
    commands = child_commands(ports, root)
    with progress.stage("starting " + ", ".join(commands)):
        for name, command in commands.items():
            children[name], record = child_start(root=root, name=name, command=command)
            records.append(record)
        _wait_http(f"http://127.0.0.1:{ports.fake_port}/health", children, root)
        _wait_http(f"{ports.url}/accounts/login/", children, root)
    env_file = root / "demo.env"
    demo = demo_env_read(env_file)
    from gateway.catalog.demo import FAILOVER_GROUP, FAKE_MODELS
    from tenants.management.commands.demo_setup import DEMO_EMAIL, DEMO_PASSWORD

    models = ", ".join([m.public_name for m in FAKE_MODELS] + [FAILOVER_GROUP])
    progress.say(
        f"\n  Web UI:        {ports.url}/\n"
        f"  Admin:         {ports.url}/admin/\n"
        f"  API docs:      {ports.url}/api/docs/\n"
        f"  Demo login:    {DEMO_EMAIL} / {DEMO_PASSWORD}\n"
        f"  Proxy:         {demo['AIPROXY_BASE_URL']}  (OpenAI SDK: this URL; Anthropic SDK: without /v1)\n"
        f"  Models:        {models}\n"
        f"  Demo API key:  {demo['AIPROXY_API_KEY']}\n"
        f"  Written to:    {_shown(env_file)}  (`source` it to export both)\n"
        f"  Logs:          {_shown(root / 'logs')}/\n"
        f"  Stop:          Ctrl-C, or `make stop` from another terminal\n"
    )


def _shown(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def demo_env_read(path: Path) -> dict[str, str]:
    """`export NAME=value` lines, as a shell and demo_setup write them."""
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip().removeprefix("export ").strip()
        if "=" in line and not line.startswith("#"):
            name, value = line.split("=", 1)
            values[name] = value.strip("'\"")
    return values


# --- make stop --------------------------------------------------------------------------------


def stop() -> int:
    root = data_dir()
    stopped = tracked_stop(root=root)
    if stopped:
        print(f"stopped in {root}: " + ", ".join(f"{r.name} (pid {r.pid})" for r in stopped))
    servers = _embedded_running(root)
    if not servers:
        if not stopped:
            print(f"nothing of `make run` is running in {root}")
        return 0
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
    try:
        from aiproxy_site.embedded import stop_all
    except ImportError:
        print(f"the venv is missing: cannot stop the embedded {' and '.join(servers)} of {root}", file=sys.stderr)
        return 1
    stop_all()
    left = _embedded_running(root)
    if left:
        print(
            f"the embedded {' and '.join(left)} of {root} did not stop: see {root}/pg/log and {root}/redis/redis.log",
            file=sys.stderr,
        )
        return 1
    print(f"stopped in {root}: the embedded {' and '.join(servers)}")
    return 0


def _embedded_running(root: Path) -> list[str]:
    running = {
        "PostgreSQL": (root / "pg" / "postmaster.pid").exists(),
        "Redis": _pid_file_alive(root / "redis" / "redis.pid"),
    }
    return [name for name, alive in running.items() if alive]


def _pid_file_alive(path: Path) -> bool:
    try:
        return _proc_stat(int(path.read_text().split()[0])) is not None
    except (OSError, ValueError, IndexError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launcher", description="`make run` and `make stop`.")
    parser.add_argument("command", nargs="?", choices=["run", "stop"], default="run")
    parser.add_argument("--install", action="store_true", help="install the dependencies into .venv first")
    args = parser.parse_args(argv)
    try:
        return stop() if args.command == "stop" else run(install=args.install)
    except Shutdown:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    if sys.path and Path(sys.path[0]).resolve() == ROOT / "aiproxy_site":
        sys.path[0] = str(ROOT)  # run as a file: import from the project root, not from aiproxy_site/
    sys.exit(main())
