"""A private single-node Slurm cluster on this machine, for the cluster tests.

Built from Debian's slurm-wlm and munge: its own munge key and socket, a generated
slurm.conf with a CPU and a GPU partition, and two fake GPUs declared as generic
resources (gres.conf with AutoDetect=off and File= pointing at two device nodes made
with mknod, or at plain files where mknod is not allowed: Slurm schedules them like
GPUs either way). munged, slurmctld and slurmd run as root in a temporary folder on
free ports; ``stop`` cancels the cluster's jobs and ends exactly the daemons it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BINARIES = (
    "munged",
    "slurmctld",
    "slurmd",
    "sbatch",
    "srun",
    "squeue",
    "sinfo",
    "scontrol",
    "scancel",
)


def missing_requirements() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    absent = [b for b in BINARIES if shutil.which(b) is None]
    if absent:
        return (
            f"Slurm/munge binaries not found: {', '.join(absent)} (apt-get install slurm-wlm munge)"
        )
    if os.geteuid() != 0:
        return "starting slurmd needs root"
    return None


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _mem_mb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class SlurmCluster:
    """One node (this host), partitions ``cpu_partition`` and ``gpu_partition``."""

    def __init__(self, root: Path, cpu_partition="short", gpu_partition="gpu_test", n_gpus=2):
        self.root = Path(root)
        self.cpu_partition = cpu_partition
        self.gpu_partition = gpu_partition
        self.n_gpus = n_gpus
        self.node = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.mem_mb = min(16000, int(0.8 * _mem_mb()))
        self.conf = self.root / "slurm.conf"
        self._pidfiles: list[Path] = []

    @property
    def env(self) -> dict:
        """Environment for Slurm clients (and Snakemake) talking to this cluster.

        Inside a job, snakemake-executor-plugin-slurm-jobstep starts the rule with
        ``srun`` after removing every SLURM_* variable it does not know, SLURM_CONF
        included; real clusters keep their config in /etc/slurm. Here ``bin/srun``
        on the PATH puts SLURM_CONF back, so nothing outside the cluster's folder is
        touched.
        """
        path = f"{self.root / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
        return dict(os.environ, SLURM_CONF=str(self.conf), PATH=path)

    def _write_config(self) -> None:
        r = self.root
        for sub in ("munge", "state", "spool", "log", "gpu"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(r, 0o700)
        os.chmod(r / "munge", 0o700)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        for i in range(self.n_gpus):
            dev = r / "gpu" / f"fakegpu{i}"
            try:  # a character device (like /dev/null) keeps slurmd's device checks quiet
                os.mknod(dev, 0o600 | 0o020000, os.makedev(1, 3))
            except OSError:
                dev.touch()
        (r / "bin").mkdir(exist_ok=True)
        srun = r / "bin" / "srun"
        srun.write_text(f'#!/bin/sh\nSLURM_CONF={self.conf} exec {shutil.which("srun")} "$@"\n')
        srun.chmod(0o755)
        ctld_port, d_port = _free_ports(2)
        last = self.n_gpus - 1
        gres = f"Gres=gpu:{self.n_gpus} State=UNKNOWN"
        self.conf.write_text(
            f"""ClusterName=cgflowtest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={r}/munge/munge.sock
CredType=cred/munge
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
GresTypes=gpu
MpiDefault=none
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
SchedulerParameters=sched_interval=1
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.mem_mb} {gres}
PartitionName={self.cpu_partition} Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
PartitionName={self.gpu_partition} Nodes={self.node} MaxTime=INFINITE State=UP
"""
        )
        (r / "gres.conf").write_text(
            f"AutoDetect=off\nNodeName={self.node} Name=gpu File={r}/gpu/fakegpu[0-{last}]\n"
        )

    def _daemon(self, args: list[str], pidfile: Path) -> None:
        subprocess.run(args, check=True, env=self.env, capture_output=True, timeout=60)
        self._pidfiles.append(pidfile)
        for _ in range(100):
            if pidfile.exists() and pidfile.read_text().strip():
                return
            time.sleep(0.1)
        raise RuntimeError(f"{args[0]} wrote no pid file {pidfile}")

    def start(self, timeout: float = 60.0) -> SlurmCluster:
        self._write_config()
        r = self.root
        self._daemon(
            [
                "munged",
                "--force",
                f"--socket={r}/munge/munge.sock",
                f"--key-file={r}/munge/munge.key",
                f"--pid-file={r}/munge/munged.pid",
                f"--log-file={r}/munge/munged.log",
                f"--seed-file={r}/munge/munged.seed",
            ],
            r / "munge" / "munged.pid",
        )
        self._daemon(["slurmctld", "-f", str(self.conf), "-i"], r / "slurmctld.pid")
        self._daemon(["slurmd", "-f", str(self.conf), "-N", self.node], r / "slurmd.pid")
        deadline = time.monotonic() + timeout
        state = ""
        while time.monotonic() < deadline and self._alive():
            proc = self.run("sinfo", "-h", "-N", "-o", "%t", check=False)
            state = proc.stdout.strip()
            if state.startswith("idle"):
                return self
            time.sleep(0.5)
        logs = "".join(
            f"--- {name}\n" + "\n".join((r / "log" / name).read_text().splitlines()[-5:]) + "\n"
            for name in ("slurmctld.log", "slurmd.log")
            if (r / "log" / name).exists()
        )
        self.stop()
        raise RuntimeError(f"Slurm node not idle (state {state!r}); last log lines:\n{logs}")

    def _alive(self) -> bool:
        """Whether every daemon started so far still runs."""
        for pidfile in self._pidfiles:
            try:
                os.kill(int(pidfile.read_text().strip()), 0)
            except (OSError, ValueError):
                return False
        return True

    def run(self, *args, check=True) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, check=check, timeout=60
        )

    def jobs(self) -> dict[str, dict[str, str]]:
        """Every job the controller still knows (MinJobAge keeps finished ones an hour),
        as ``{job_id: {field: value}}`` from ``scontrol show job --oneliner``."""
        out = self.run("scontrol", "show", "job", "--oneliner", check=False).stdout
        records = {}
        for line in out.splitlines():
            fields = {}
            for token in line.split():
                if "=" in token:
                    k, _, v = token.partition("=")
                    fields[k] = v
            if "JobId" in fields:
                records[fields["JobId"]] = fields
        return records

    def stop(self) -> None:
        if self.conf.exists() and self._pidfiles:
            self.run("scancel", "--quiet", "-u", "root", check=False)
            for _ in range(60):  # let cancelled jobs end before their daemons go
                if not self.run("squeue", "-h", "-t", "R,CG,PD", check=False).stdout.strip():
                    break
                time.sleep(0.5)
        for pidfile in reversed(self._pidfiles):
            try:
                pid = int(pidfile.read_text().strip())
            except (OSError, ValueError):
                continue
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            for _ in range(100):  # up to 10 s for a clean exit
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(pid, signal.SIGKILL)
        self._pidfiles.clear()
