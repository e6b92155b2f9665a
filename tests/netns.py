"""A separate network host for tests and benches: a network namespace behind a veth pair.

``with Namespace(rate="8mbit") as host:`` creates namespace ``host.name`` holding ``host.inside``
(address ``host.address``), with the other end ``host.outside`` (``host.gateway``) left here on a
private /30 of 10.213.0.0/16. ``rate`` shapes the namespace's egress (what the "device" uploads)
with a tc HTB class; netem is not available on these kernels. ``host.popen(cmd)`` starts a process
inside. Everything is removed on exit, also when the block fails: the processes started inside
(their process groups, and any other process still in the namespace), the veth pair and the namespace.
"""

import os
import secrets
import shutil
import signal
import subprocess


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


def available(shaping=True) -> bool:
    """Root with iproute2 (and tc for ``shaping``): what namespaces (and shaped links) need."""
    return os.geteuid() == 0 and shutil.which("ip") is not None and (not shaping or shutil.which("tc") is not None)


def free_subnet() -> str:
    """``10.213.X.Y`` starting a /30 that no address on this host is in (other tests run meanwhile)."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    taken = {word.split("/")[0].rsplit(".", 1)[0] + "." + str(int(word.split("/")[0].rsplit(".", 1)[1]) & ~3)
             for word in used.split() if word.startswith("10.213.")}
    while True:
        subnet = f"10.213.{secrets.randbelow(250) + 1}.{4 * (secrets.randbelow(62) + 1)}"
        if subnet not in taken:
            return subnet


class Namespace:
    def __init__(self, rate=None):
        tag = secrets.token_hex(3)
        self.name, self.outside, self.inside = f"ek-{tag}", f"ekh{tag}", f"ekd{tag}"
        prefix, first = free_subnet().rsplit(".", 1)
        self.gateway = f"{prefix}.{int(first) + 1}"
        self.address = f"{prefix}.{int(first) + 2}"
        self.rate = rate
        self.processes = []

    def __enter__(self):
        ip("netns", "add", self.name)
        try:
            ip("link", "add", self.outside, "type", "veth", "peer", "name", self.inside)
            ip("link", "set", self.inside, "netns", self.name)
            ip("addr", "add", f"{self.gateway}/30", "dev", self.outside)
            ip("link", "set", self.outside, "up")
            self.run("ip", "addr", "add", f"{self.address}/30", "dev", self.inside)
            self.run("ip", "link", "set", self.inside, "up")
            self.run("ip", "link", "set", "lo", "up")
            if self.rate:
                self.run("tc", "qdisc", "add", "dev", self.inside, "root", "handle", "1:", "htb", "default", "10")
                self.run("tc", "class", "add", "dev", self.inside, "parent", "1:", "classid", "1:10", "htb",
                         "rate", self.rate)
        except BaseException:
            self.__exit__()
            raise
        return self

    def run(self, *command):
        """Run ``command`` inside the namespace and wait for it (CalledProcessError if it fails)."""
        return subprocess.run(["ip", "netns", "exec", self.name, *command], check=True, capture_output=True,
                              text=True)

    def popen(self, command, **options):
        """Start ``command`` inside the namespace in its own process group; stopped on exit."""
        process = subprocess.Popen(["ip", "netns", "exec", self.name, *command], start_new_session=True, **options)
        self.processes.append(process)
        return process

    def __exit__(self, *exc):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        # whatever else runs in there (an sshd, an agent it started detached) goes with the namespace
        pids = subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        subprocess.run(["ip", "link", "del", self.outside], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
