"""The local streaming stack as plain processes, without containers: a Kafka broker and a Triton server.

Wiring only. Kafka (KRaft, one combined broker + controller) runs from the jars that
``stack/kafka/pom.xml`` fetches from Maven Central; Triton is the ``tritonserver`` binary of the
``nvidia-pytriton`` wheel from PyPI, serving ``model_repository/`` with its Python backend on CPU. Both
are fetched once into ``~/.cache/twinwatch`` (outside the clone), so a repeat start takes seconds.

Each start writes into one run folder: ``logs/`` (one log per service), ``pids/``, ``stack.json``
(ports), Kafka's data and the served copy of the model repository. ``up()`` waits until the broker
answers a metadata request and Triton is ready with the model loaded and one real inference answered;
``down()`` stops the process groups (SIGTERM, then SIGKILL) and leaves no process behind. Linux only
(liveness is read from /proc).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import shutil
import signal
import socket
import string
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_DIR = REPO_ROOT / "stack" / "kafka"
KAFKA_MARKER = "kafka.Kafka"
TRITON_MARKER = "tritonserver"
STUB_MARKER = "triton_python_backend_stub"
SERVICE_MODULES = {"windower": "services.windower.app", "trainer": "services.trainer.main",
                   "evaluator": "services.evaluator.main"}  # started in this order, stopped in reverse
JOBS = {"trainer"}  # exits once its model is published
ARM_FILE = "twin_arm.torchscript"  # twinwatch.twin.ARM_TORCHSCRIPT_FILE, repeated to keep torch out of this import
NODE_ID = 1


def service_command(name: str, run_dir: Path, python: str | os.PathLike = sys.executable) -> list[str]:
    """The command line of a service; the windower is a Faust worker keeping its data under ``run_dir``."""
    module = SERVICE_MODULES[name]
    if name == "windower":  # no web server: several workers share a machine (tests, benches)
        return [str(python), "-m", "faust", "--datadir", str(run_dir / "windower"), "-A", module, "worker",
                "-l", "info", "--without-web"]
    return [str(python), "-m", module]


class StackError(RuntimeError):
    """A stack service could not be installed, started or stopped; the message names the log to read."""


class StackSettings(BaseSettings):
    """Where the stack runs and what it starts; each field can be set as ``TWINWATCH_STACK_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="TWINWATCH_STACK_", protected_namespaces=())

    run_dir: Path = Path("runs/stack")
    cache_dir: Path = Path.home() / ".cache" / "twinwatch"
    kafka: bool = True
    triton: bool = True
    ready_timeout_s: float = 120.0
    stop_timeout_s: float = 30.0

    kafka_version: str = "4.4.0"
    kafka_dir: Path = KAFKA_DIR  # pom.xml, server.properties and log4j2.properties templates
    kafka_heap_mb: int = 512
    kafka_port: int = 0  # 0: a free port, chosen at start (the previous one when still free)
    kafka_controller_port: int = 0
    java: str = "java"
    maven: str = "mvn"

    pytriton_version: str = "0.7.0"
    triton_http_port: int = 0
    triton_grpc_port: int = 0
    triton_metrics_port: int = 0
    model_repository: Path = REPO_ROOT / "model_repository"  # copied into the run folder, never written
    model_name: str = "tnn"
    python: Path = Path(sys.executable)  # its environment serves model.py (numpy, torch), its stub is used

    services: bool = True  # windower, trainer and evaluator as processes (capture is pointed at a source)
    tz: str = "UTC"  # site time zone of the quiet period, for the services
    quiet: str = "00:00-06:00"
    topic_prefix: str = ""
    devices_file: Path | None = None  # CSV mac,name,model: names on the evaluator's events


@dataclass(frozen=True)
class ServiceStatus:
    """One process of the stack: is it alive (and is it ours), and where it logs."""

    name: str
    pid: int | None
    running: bool
    listening: bool
    log: Path
    ports: dict[str, int] = field(default_factory=dict)
    job: bool = False  # runs to completion (the trainer): not running is not a fault
    note: str = ""  # for a service that is not running: the last error line of its log


@dataclass(frozen=True)
class StackStatus:
    """Endpoints, pids and logs of the stack; what the CLI prints and the services connect to."""

    run_dir: Path
    logs_dir: Path
    bootstrap_servers: str | None
    triton_http_url: str | None
    triton_grpc_url: str | None
    triton_metrics_url: str | None
    model_repository: Path | None  # the served copy: the trainer writes new versions here
    model_name: str
    services: dict[str, ServiceStatus]

    @property
    def running(self) -> bool:
        """Every service recorded in the run folder is alive."""
        return bool(self.services) and all(s.running or s.job for s in self.services.values())

    def as_dict(self) -> dict:
        """JSON-friendly form (paths as strings)."""
        return json.loads(json.dumps(asdict(self), default=str))


class LocalStack:
    """Starts, checks and stops the local Kafka + Triton processes of one run folder."""

    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings()
        self.run_dir = self.settings.run_dir.expanduser().resolve()
        self.cache_dir = self.settings.cache_dir.expanduser().resolve()
        self.logs_dir = self.run_dir / "logs"
        self.pids_dir = self.run_dir / "pids"
        self.state_file = self.run_dir / "stack.json"
        self._children: dict[int, subprocess.Popen] = {}
        self._exit_codes: dict[int, int] = {}

    # ----------------------------------------------------------------------------------- public

    def install(self) -> None:
        """Fetch what the enabled services need into the cache (Maven Central, PyPI); a no-op once done."""
        with _locked(self.cache_dir):
            if self.settings.kafka:
                self._kafka_template(self._kafka_libs())
            if self.settings.triton:
                self._triton_home()

    def up(self) -> StackStatus:
        """Start whatever is not running yet and wait until all of it is ready (idempotent)."""
        self.install()
        started: list[str] = []
        with _locked(self.run_dir):
            state = self._read_state()
            try:  # both start at once, then both are waited for: the waits overlap
                if self.settings.kafka:
                    state["kafka"] = self._start_kafka(state.get("kafka"), started)
                if self.settings.triton:
                    state["triton"] = self._start_triton(state.get("triton"), started)
                self._write_state(state)
                deadline = time.monotonic() + self.settings.ready_timeout_s
                if self.settings.kafka:
                    self._wait_kafka(state["kafka"], deadline)
                if self.settings.triton:
                    self._wait_triton(state["triton"], deadline)
                if self.settings.services and self.settings.kafka and self.settings.triton:
                    state["services"] = self._start_services(state, started)
                    self._write_state(state)
            except BaseException:
                for name in reversed(started):  # a failed up leaves nothing it started running
                    self._stop(name, self._read_pid(name))
                raise
        status = self.status()
        logger.info("stack up in %s: kafka %s, triton %s", self.run_dir, status.bootstrap_servers,
                    status.triton_grpc_url)
        return status

    def down(self, purge: bool = False) -> StackStatus:
        """Stop every service of this run folder (SIGTERM, SIGKILL after stop_timeout_s); purge drops its data."""
        with _locked(self.run_dir):
            state = self._read_state()
            for name in (*reversed(SERVICE_MODULES), "triton", "kafka"):
                saved = state.get("services", {}).get(name) if name in SERVICE_MODULES else state.get(name)
                pid = self._read_pid(name)
                self._stop(name, pid if pid is not None else (saved or {}).get("pid"))
            leftover = self.processes()
            for pid, cmdline in leftover.items():  # e.g. a stub whose server was SIGKILLed from outside
                logger.warning("killing leftover process %d: %s", pid, cmdline[:120])
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            if purge:
                for path in (self.run_dir / "kafka", self.run_dir / "triton", self.run_dir / "model_repository"):
                    shutil.rmtree(path, ignore_errors=True)
                self.state_file.unlink(missing_ok=True)
        return self.status()

    def status(self) -> StackStatus:
        """Liveness of each service from its pid file and /proc, plus whether its main port accepts connections."""
        state = self._read_state()
        services: dict[str, ServiceStatus] = {}
        for name, marker, port_key in (("kafka", KAFKA_MARKER, "port"), ("triton", TRITON_MARKER, "grpc_port")):
            entry = state.get(name)
            if entry is None:
                continue
            pid = self._read_pid(name)
            running = pid is not None and self._alive(pid, marker)
            ports = {k: v for k, v in entry.items() if k.endswith("port")}
            listening = running and _port_open(ports[port_key])
            services[name] = ServiceStatus(name, pid, running, listening, self.logs_dir / f"{name}.log", ports)
        for name, module in SERVICE_MODULES.items():
            if name not in state.get("services", {}):
                continue
            pid = self._read_pid(name)
            running = pid is not None and self._alive(pid, module)
            log = self.logs_dir / f"{name}.log"
            services[name] = ServiceStatus(name, pid, running, running, log, job=name in JOBS,
                                           note="" if running else _last_error(log).strip(" ()"))
        kafka, triton = state.get("kafka"), state.get("triton")
        return StackStatus(
            run_dir=self.run_dir,
            logs_dir=self.logs_dir,
            bootstrap_servers=f"127.0.0.1:{kafka['port']}" if kafka else None,
            triton_http_url=f"http://127.0.0.1:{triton['http_port']}" if triton else None,
            triton_grpc_url=f"127.0.0.1:{triton['grpc_port']}" if triton else None,
            triton_metrics_url=f"http://127.0.0.1:{triton['metrics_port']}/metrics" if triton else None,
            model_repository=Path(triton["model_repository"]) if triton else None,
            model_name=self.settings.model_name,
            services=services,
        )

    def processes(self) -> dict[int, str]:
        """Live processes of this run folder: the broker, the server and Triton's Python stubs."""
        found = {}
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and self._ours(int(proc.name)):
                with contextlib.suppress(OSError):
                    found[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        return found

    # ------------------------------------------------------------------------------------ kafka

    def _kafka_home(self) -> Path:
        return self.cache_dir / f"kafka-{self.settings.kafka_version}"

    def _kafka_libs(self) -> Path:
        """The broker's jars, fetched once per version by Maven into the cache."""
        home = self._kafka_home()
        libs, done = home / "libs", home / "libs.complete"
        if done.is_file() and libs.is_dir():
            return libs
        for tool in (self.settings.maven, self.settings.java):
            if shutil.which(tool) is None:
                raise StackError(f"{tool!r} is not on PATH: Kafka needs Java 17+ and Maven (apt-get install maven)")
        partial = home / "libs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        started = time.monotonic()
        logger.info("fetching Kafka %s jars from Maven Central into %s", self.settings.kafka_version, libs)
        _run([self.settings.maven, "-q", "-B", "-f", str(self.settings.kafka_dir / "pom.xml"),
              "dependency:copy-dependencies", "-DincludeScope=runtime",
              f"-Dkafka.version={self.settings.kafka_version}", f"-DoutputDirectory={partial}"],
             what=f"fetching Kafka {self.settings.kafka_version} with Maven")
        if not any(partial.glob("kafka_2.13-*.jar")):
            raise StackError(f"Maven fetched no kafka_2.13 jar into {partial}")
        shutil.rmtree(libs, ignore_errors=True)
        partial.rename(libs)
        done.touch()
        logger.info("Kafka jars ready in %.1f s", time.monotonic() - started)
        return libs

    def _kafka_template(self, libs: Path) -> Path:
        """Storage formatted once (fixed cluster id, static quorum: no address inside), copied per run folder."""
        home = self._kafka_home() / f"formatted-node{NODE_ID}"
        data = home / "data"
        if (data / "meta.properties").is_file():
            return data
        partial = home / "data.partial"
        shutil.rmtree(partial, ignore_errors=True)
        home.mkdir(parents=True, exist_ok=True)
        properties = home / "format.properties"
        properties.write_text(self._render_server_properties(port=2, controller_port=1, log_dirs=partial))
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        _run([self.settings.java, *self._java_logging(home / "format-log4j2.properties"), "-cp", f"{libs}/*",
              "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)],
             what="formatting Kafka storage")
        partial.rename(data)
        return data

    def _render_server_properties(self, port: int, controller_port: int, log_dirs: Path) -> str:
        template = string.Template((self.settings.kafka_dir / "server.properties").read_text())
        return template.substitute(node_id=NODE_ID, port=port, controller_port=controller_port, log_dirs=log_dirs)

    def _java_logging(self, config: Path) -> list[str]:
        shutil.copyfile(self.settings.kafka_dir / "log4j2.properties", config)
        return [f"-Dlog4j2.configurationFile={config}"]

    def _start_kafka(self, previous: dict | None, started: list[str]) -> dict:
        """Spawn the broker unless this run folder's is alive; returns its pid and ports."""
        if previous and self._alive(previous["pid"], KAFKA_MARKER):
            logger.info("kafka already running (pid %d)", previous["pid"])
            return previous
        self._stop("kafka", (previous or {}).get("pid"))  # whatever is left of a broker that died
        libs = self._kafka_libs()
        template = self._kafka_template(libs)
        folder = self.run_dir / "kafka"
        data = folder / "data"
        if not (data / "meta.properties").is_file():  # keep the topics of an earlier start of this run folder
            shutil.rmtree(data, ignore_errors=True)
            shutil.copytree(template, data)
        previous = previous or {}
        taken: set[int] = set()
        port = _pick_port(self.settings.kafka_port, previous.get("port"), taken)
        controller_port = _pick_port(self.settings.kafka_controller_port, previous.get("controller_port"), taken)
        properties = folder / "server.properties"
        properties.write_text(self._render_server_properties(port, controller_port, data))
        heap = self.settings.kafka_heap_mb
        command = [self.settings.java, f"-Xmx{heap}m", f"-Xms{min(heap, 256)}m", "-XX:+UseG1GC",
                   "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
                   *self._java_logging(folder / "log4j2.properties"),
                   "-cp", f"{libs}/*", "kafka.Kafka", str(properties)]
        pid = self._spawn("kafka", command, cwd=folder, env=dict(os.environ))
        started.append("kafka")
        return {"pid": pid, "port": port, "controller_port": controller_port, "started": time.time()}

    def _wait_kafka(self, entry: dict, deadline: float) -> None:
        """Ready when a real client (librdkafka) gets broker metadata back."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        bootstrap = f"127.0.0.1:{entry['port']}"
        rdkafka_logger = logging.getLogger(f"{__name__}.rdkafka")
        admin, last = None, "port closed"
        while True:
            self._check_alive("kafka", entry["pid"], KAFKA_MARKER)
            if admin is None and _port_open(entry["port"]):
                admin = AdminClient({"bootstrap.servers": bootstrap, "logger": rdkafka_logger})
            if admin is not None:
                try:
                    metadata = admin.list_topics(timeout=2)
                    if metadata.brokers:
                        logger.info("kafka ready on %s, %.1f s after its start (pid %d)", bootstrap,
                                    time.time() - entry.get("started", time.time()), entry["pid"])
                        return
                    last = "no broker in metadata"
                except KafkaException as error:
                    last = str(error)
            if time.monotonic() > deadline:
                raise StackError(f"kafka on {bootstrap} not ready after {self.settings.ready_timeout_s:.0f} s "
                                 f"({last}); read {self.logs_dir / 'kafka.log'}")
            time.sleep(0.2)

    # ----------------------------------------------------------------------------------- triton

    def _triton_home(self) -> Path:
        """The nvidia-pytriton wheel unpacked into the cache with ``pip --target --no-deps``.

        Not installed into the environment: the wheel pins numpy<2 and twinwatch needs numpy 2; only its
        ``tritonserver`` binary, Python backend and stubs are used.
        """
        home = self.cache_dir / f"pytriton-{self.settings.pytriton_version}"
        if (home / "pytriton" / "tritonserver" / "bin" / "tritonserver").is_file():
            return home
        partial = home.with_name(home.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        started = time.monotonic()
        logger.info("fetching nvidia-pytriton %s from PyPI into %s", self.settings.pytriton_version, home)
        _run([str(self.settings.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              "--no-deps", "--target", str(partial), f"nvidia-pytriton=={self.settings.pytriton_version}"],
             what="installing nvidia-pytriton")
        shutil.rmtree(home, ignore_errors=True)
        partial.rename(home)
        logger.info("tritonserver ready in %.1f s", time.monotonic() - started)
        return home

    def _python_version(self) -> str:
        if Path(self.settings.python).resolve() == Path(sys.executable).resolve():
            return f"{sys.version_info.major}.{sys.version_info.minor}"
        out = subprocess.run([str(self.settings.python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def _triton_backends(self, home: Path, folder: Path) -> Path:
        """The Python backend plus the stub built for the serving interpreter's version."""
        server = home / "pytriton" / "tritonserver"
        version = self._python_version()
        stub = server / "python_backend_stubs" / version / "triton_python_backend_stub"
        if not stub.is_file():
            raise StackError(f"nvidia-pytriton {self.settings.pytriton_version} has no Python backend stub for "
                             f"Python {version} (looked for {stub})")
        backends = folder / "backends"
        python = backends / "python"
        python.mkdir(parents=True, exist_ok=True)
        for source in (server / "backends" / "python" / "libtriton_python.so",
                       server / "backends" / "python" / "triton_python_backend_utils.py", stub):
            _copy_if_changed(source, python / source.name)
        return backends

    def _start_triton(self, previous: dict | None, started: list[str]) -> dict:
        """Spawn the server unless this run folder's is alive; returns its pid, ports and served repository."""
        if previous and self._alive(previous["pid"], TRITON_MARKER):
            logger.info("triton already running (pid %d)", previous["pid"])
            return previous
        self._stop("triton", (previous or {}).get("pid"))  # e.g. the stubs of a server killed from outside
        home = self._triton_home()
        folder = self.run_dir / "triton"
        backends = self._triton_backends(home, folder)
        repository = self.run_dir / "model_repository"
        prepare_model_repository(self.settings.model_repository, repository, self.settings.model_name)
        previous = previous or {}
        taken: set[int] = set()
        ports = {key: _pick_port(getattr(self.settings, f"triton_{key}"), previous.get(key), taken)
                 for key in ("http_port", "grpc_port", "metrics_port")}
        env = dict(os.environ)
        # the stub embeds libpython: with the environment's bin first on PATH it finds that environment's
        # site-packages (numpy, torch); it needs the CUDA runtime shipped in the wheel even on CPU
        env["PATH"] = os.pathsep.join([str(Path(self.settings.python).parent), env.get("PATH", "")])
        libdirs = [str(home / "nvidia_pytriton.libs"), sysconfig.get_config_var("LIBDIR") or ""]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in [*libdirs, env.get("LD_LIBRARY_PATH", "")] if p)
        command = [str(home / "pytriton" / "tritonserver" / "bin" / "tritonserver"),
                   f"--model-repository={repository}", f"--backend-directory={backends}",
                   "--http-address=127.0.0.1", f"--http-port={ports['http_port']}",
                   "--grpc-address=127.0.0.1", f"--grpc-port={ports['grpc_port']}",
                   "--metrics-address=127.0.0.1", f"--metrics-port={ports['metrics_port']}",
                   "--model-control-mode=explicit", f"--load-model={self.settings.model_name}",
                   "--strict-readiness=true", f"--exit-timeout-secs={max(1, int(self.settings.stop_timeout_s / 2))}"]
        pid = self._spawn("triton", command, cwd=folder, env=env)
        started.append("triton")
        return {"pid": pid, **ports, "model_repository": str(repository), "started": time.time()}

    def _wait_triton(self, entry: dict, deadline: float) -> None:
        """Ready when the server and the model say so over HTTP and one inference comes back over gRPC."""
        http = f"http://127.0.0.1:{entry['http_port']}"
        model = self.settings.model_name
        last = "not answering"
        while True:
            self._check_alive("triton", entry["pid"], TRITON_MARKER)
            if _http_ok(f"{http}/v2/health/ready") and _http_ok(f"{http}/v2/models/{model}/ready"):
                break
            if time.monotonic() > deadline:
                raise StackError(f"triton on {http} not ready with model {model!r} after "
                                 f"{self.settings.ready_timeout_s:.0f} s ({last}); read {self.logs_dir / 'triton.log'}")
            time.sleep(0.25)
        try:
            _probe_inference(f"127.0.0.1:{entry['grpc_port']}", model)
        except Exception as error:
            raise StackError(f"triton model {model!r} is ready but an inference failed ({error}); "
                             f"read {self.logs_dir / 'triton.log'}") from error
        logger.info("triton ready on grpc 127.0.0.1:%d with %r answering, %.1f s after its start (pid %d)",
                    entry["grpc_port"], model, time.time() - entry.get("started", time.time()), entry["pid"])

    # -------------------------------------------------------------------------------- processes

    # --------------------------------------------------------------------------------- services

    def _service_env(self, state: dict) -> dict[str, str]:
        """What the services need to find the broker, the server and the site's quiet period."""
        settings = self.settings
        env = os.environ | {
            "TWINWATCH_STACK_RUN_DIR": str(self.run_dir),
            "TWINWATCH_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{state['kafka']['port']}",
            "TWINWATCH_KAFKA_TOPIC_PREFIX": settings.topic_prefix,
            "TWINWATCH_TRITON_GRPC_URL": f"127.0.0.1:{state['triton']['grpc_port']}",
            "TWINWATCH_TRITON_MODEL_NAME": settings.model_name,
            "TWINWATCH_TRAINER_MODEL_REPOSITORY": state["triton"]["model_repository"],
            "PYTHONUNBUFFERED": "1",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),  # several services share the cores
        }
        for name in SERVICE_MODULES:
            env |= {f"TWINWATCH_{name.upper()}_TZ": settings.tz, f"TWINWATCH_{name.upper()}_QUIET": settings.quiet}
        if settings.devices_file:
            env["TWINWATCH_EVALUATOR_DEVICES_FILE"] = str(settings.devices_file.expanduser().resolve())
        return env

    def _start_services(self, state: dict, started: list[str]) -> dict:
        """Windower, trainer and evaluator, each unless already running; a service that dies at once is an error."""
        entries = dict(state.get("services", {}))
        env = self._service_env(state)
        settings = self.settings
        config = {"tz": settings.tz, "quiet": settings.quiet, "topic_prefix": settings.topic_prefix,
                  "devices_file": str(settings.devices_file or "")}
        fresh = []
        for name, module in SERVICE_MODULES.items():
            pid = self._read_pid(name)
            if pid is not None and self._alive(pid, module):
                if entries.get(name, {}).get("config") == config:
                    continue
                logger.info("restarting %s: started with %s, asked for %s", name, entries.get(name, {}).get("config"),
                            config)
                self._stop(name, pid)
            command = service_command(name, self.run_dir, self.settings.python)
            entries[name] = {"pid": self._spawn(name, command, REPO_ROOT, env), "started": time.time(),
                             "config": config}
            started.append(name)
            fresh.append(name)
        time.sleep(3 if fresh else 0)
        for name in fresh:
            pid = entries[name]["pid"]
            self._reap(pid)
            if not self._alive(pid, SERVICE_MODULES[name]) and not (name in JOBS and self._exit_codes.get(pid) == 0):
                self._check_alive(name, pid, SERVICE_MODULES[name])
        return entries

    def _spawn(self, name: str, command: list[str], cwd: Path, env: dict[str, str]) -> int:
        """Start a server in its own session (so its children stop with it), logging into logs/<name>.log."""
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.pids_dir.mkdir(parents=True, exist_ok=True)
        cwd.mkdir(parents=True, exist_ok=True)
        log_path = self.logs_dir / f"{name}.log"
        with log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self._children[process.pid] = process
        (self.pids_dir / f"{name}.pid").write_text(f"{process.pid}\n")
        logger.info("started %s (pid %d), log %s", name, process.pid, log_path)
        return process.pid

    def _stop(self, name: str, pid: int | None) -> None:
        """SIGTERM to the process group, SIGKILL after stop_timeout_s; then forget the pid.

        Also cleans up after a server killed from outside: its Python stubs outlive it in its group.
        """
        marker = {"kafka": KAFKA_MARKER, "triton": TRITON_MARKER}.get(name) or SERVICE_MODULES[name]
        if pid is not None and (self._alive(pid, marker) or self._group_members(pid)):
            began = time.monotonic()
            self._signal_group(pid, marker, signal.SIGTERM)
            if not self._wait_group_gone(pid, marker, self.settings.stop_timeout_s):
                logger.warning("%s (pid %d) still running after %.0f s: SIGKILL", name, pid,
                               self.settings.stop_timeout_s)
                self._signal_group(pid, marker, signal.SIGKILL)
                if not self._wait_group_gone(pid, marker, 10.0):
                    raise StackError(f"{name} (pid {pid}) survived SIGKILL; read {self.logs_dir / f'{name}.log'}")
            logger.info("stopped %s (pid %d) in %.1f s", name, pid, time.monotonic() - began)
        self._reap(pid)
        (self.pids_dir / f"{name}.pid").unlink(missing_ok=True)

    def _signal_group(self, pgid: int, marker: str, sig: signal.Signals) -> None:
        """The whole group while its leader is ours and alive, else each of our processes left in it."""
        targets = [] if self._alive(pgid, marker) else self._group_members(pgid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if not targets:
                os.killpg(pgid, sig)
            for pid in targets:
                os.kill(pid, sig)

    def _group_members(self, pgid: int) -> list[int]:
        """Our live processes in process group ``pgid`` (a reused pgid of someone else's group yields none)."""
        members = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and self._ours(int(proc.name)):
                members.append(int(proc.name))
        return members

    def _wait_group_gone(self, pgid: int, marker: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(pgid, marker) and not self._group_members(pgid):
                return True
            time.sleep(0.1)
        return False

    def _reap(self, pid: int | None) -> None:
        """Collect the exit status of a child of this process (no zombie is left to look alive)."""
        if pid is None:
            return
        process = self._children.get(pid)
        if process is not None:
            if process.poll() is not None:
                self._exit_codes[pid] = process.returncode
                del self._children[pid]
            return
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)

    def _alive(self, pid: int, marker: str) -> bool:
        """Alive (not a zombie) and ours: the given program, started for this run folder."""
        self._reap(pid)
        return self._ours(pid, (marker,))

    def _ours(self, pid: int, programs: tuple[str, ...] = (KAFKA_MARKER, TRITON_MARKER, STUB_MARKER,
                                                          *SERVICE_MODULES.values())) -> bool:
        """Whether a process runs one of ``programs`` for this run folder (a ``tail`` of its log does not count)."""
        if _proc_state(pid) in (None, "Z", "X"):
            return False
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            return False
        program = Path(argv[0]).name
        kinds = {KAFKA_MARKER: program.startswith("java") and KAFKA_MARKER in argv,
                 TRITON_MARKER: program == TRITON_MARKER, STUB_MARKER: program == STUB_MARKER}
        if any(kinds.get(p) for p in programs):
            return any(f"{self.run_dir}{os.sep}" in arg for arg in argv)
        if program.startswith("python") and any(module in argv for module in programs if module not in kinds):
            try:  # a service knows its stack by the run folder in its environment
                environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            except OSError:
                return False
            return f"TWINWATCH_STACK_RUN_DIR={self.run_dir}".encode() in environment
        return False

    def _check_alive(self, name: str, pid: int, marker: str) -> None:
        if not self._alive(pid, marker):
            code = self._exit_codes.get(pid)
            log = self.logs_dir / f"{name}.log"
            raise StackError(f"{name} (pid {pid}) exited" + (f" with code {code}" if code is not None else "")
                             + f" before it was ready; read {log}" + _last_error(log))

    # ------------------------------------------------------------------------------------ state

    def _read_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self, state: dict) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        partial = self.state_file.with_suffix(".json.partial")
        partial.write_text(json.dumps(state, indent=2))
        partial.replace(self.state_file)

    def _read_pid(self, name: str) -> int | None:
        try:
            return int((self.pids_dir / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            return None


# ---------------------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One up/down (or install) at a time per folder: the CLI and a test run may share one."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], what: str) -> None:
    """A setup step; on failure the error carries the tail of its output."""
    result = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-30:])
        raise StackError(f"{what} failed (exit {result.returncode}): {' '.join(command)}\n{tail}")


def _copy_if_changed(source: Path, target: Path) -> None:
    """Copy unless already there; through a rename, which works even while the old file is being executed."""
    if target.is_file() and target.stat().st_size == source.stat().st_size and \
            target.stat().st_mtime == source.stat().st_mtime:
        return
    partial = target.with_name(target.name + ".partial")
    shutil.copy2(source, partial)
    partial.replace(target)


def _last_error(log: Path) -> str:
    """The last error line of a log since its last start (Kafka's ERROR lines, Triton's E-lines, exceptions)."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 64_000))
            lines = handle.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    starts = [i for i, line in enumerate(lines) if line.startswith("=== ")]  # _spawn marks each start
    lines = lines[starts[-1]:] if starts else lines
    pattern = re.compile(r"\bERROR\b|Exception: |^E\d{4} |error: ", re.IGNORECASE)
    errors = [line.strip() for line in lines if pattern.search(line)]
    return f" (last error: {errors[-1][:300]})" if errors else ""


def prepare_model_repository(source: Path, target: Path, model_name: str = "tnn") -> None:
    """Copy the repository for serving; a model without trained weights gets a freshly initialised arm
    (in the copy only), so Triton can load it before the trainer publishes version 2."""
    source = source.expanduser().resolve()
    if not (source / model_name / "config.pbtxt").is_file():
        raise StackError(f"{source} has no {model_name}/config.pbtxt")
    shutil.copytree(source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", ".gitignore"))
    model = target / model_name
    versions = sorted((p for p in model.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
    if not versions:
        raise StackError(f"{source / model_name} has no version folder (1/model.py)")
    code = next((v / "model.py" for v in versions if (v / "model.py").is_file()), None)
    for version in versions:  # a version the trainer wrote holds the weights; the code comes from version 1
        if code is not None and not (version / "model.py").is_file():
            shutil.copy2(code, version / "model.py")
    if not any((v / ARM_FILE).is_file() for v in versions):
        _write_untrained_arm(versions[-1] / ARM_FILE)
        logger.warning("no trained weights in %s: serving a freshly initialised arm (%s)", source, versions[-1])


def _write_untrained_arm(path: Path) -> None:
    """A freshly initialised TwinArm as TorchScript, so the server has something real to serve."""
    import torch

    from twinwatch.twin import TwinNetwork

    with torch.random.fork_rng():
        torch.manual_seed(0)
        arm = TwinNetwork().arm.eval()
    torch.jit.script(arm).save(str(path))


def _probe_inference(grpc_url: str, model: str) -> None:
    """One batch of zeros shaped as the model's metadata says; every output must come back full."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import triton_to_np_dtype

    client = grpcclient.InferenceServerClient(grpc_url)
    try:
        metadata = client.get_model_metadata(model, as_json=True)
        inputs = []
        for spec in metadata["inputs"]:
            shape = [2 if int(d) == -1 else int(d) for d in spec["shape"]]
            tensor = grpcclient.InferInput(spec["name"], shape, spec["datatype"])
            tensor.set_data_from_numpy(np.zeros(shape, dtype=triton_to_np_dtype(spec["datatype"])))
            inputs.append(tensor)
        result = client.infer(model, inputs, client_timeout=30)
        for spec in metadata["outputs"]:
            expected = [2 if int(d) == -1 else int(d) for d in spec["shape"]]
            array = result.as_numpy(spec["name"])
            if array is None or list(array.shape) != expected or not np.isfinite(array).all():
                raise StackError(f"output {spec['name']}: expected shape {expected}, got "
                                 f"{None if array is None else list(array.shape)}")
    finally:
        client.close()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port(requested: int, previous: int | None, taken: set[int]) -> int:
    """The requested port, else the previous start's when still free (clients keep working), else a free one."""
    if requested:
        port = requested
    elif previous and previous not in taken and _port_free(previous):
        port = previous
    else:
        while True:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            if port not in taken:
                break
    taken.add(port)
    return port


def _proc_state(pid: int) -> str | None:
    """The state letter from /proc/<pid>/stat (R, S, Z, ...), None when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]
