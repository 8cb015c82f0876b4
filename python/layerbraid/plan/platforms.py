"""Platforms of ``layerbraid plan``: SimGrid cluster platform files (the shipped ones in
``layerbraid/platforms`` or a path) read as data into :class:`Platform`."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .costs import _MAX_FILE

#: The platform files shipped with the package (``--platform NAME``).
PLATFORMS = ("host", "cluster", "gpu")
PLATFORM_DIR = Path(__file__).resolve().parent.parent / "platforms"
_MAX_HOSTS = 1 << 22      # hosts a platform file may name (their names are kept)


@dataclass(frozen=True)
class Platform:
    """What the model needs of a SimGrid cluster platform.

    speed is relative to the calibrating machine (``speed / 1Gf``: smpirun runs with
    ``--cfg=smpi/host-speed:1Gf``, so a speed of 1Gf simulates a core as fast as the one the
    costs were measured on). Latencies in seconds, bandwidths in bytes per second.
    """

    name: str
    hosts: int
    cores_per_host: int
    speed: float
    link_latency: float
    link_bandwidth: float
    loopback_latency: float
    loopback_bandwidth: float
    hosts_per_leaf: int = 0        # fat tree: hosts under one leaf switch; 0: no fat tree
    host_names: tuple[str, ...] = ()  # the hosts in order (prefix + radical + suffix)

    @property
    def ranks(self) -> int:
        return self.hosts * self.cores_per_host

    def host_of(self, rank: int) -> int:
        """Ranks fill the hosts in order, cores_per_host ranks per host."""
        return rank // self.cores_per_host

    def hops(self, a: int, b: int) -> int:
        """Links a message from rank a to rank b crosses (0: the same host, loopback):
        2 inside a leaf switch (or in a cluster without topology), 4 through a spine."""
        ha, hb = self.host_of(a), self.host_of(b)
        if ha == hb:
            return 0
        if self.hosts_per_leaf and ha // self.hosts_per_leaf != hb // self.hosts_per_leaf:
            return 4
        return 2

    def message_time(self, a: int, b: int, nbytes: float) -> float:
        """Seconds for one message of nbytes from rank a to rank b: latency of every link
        crossed plus nbytes over the (uniform) link bandwidth."""
        h = self.hops(a, b)
        if h == 0:
            return self.loopback_latency + nbytes / self.loopback_bandwidth
        return h * self.link_latency + nbytes / self.link_bandwidth


_UNITS = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
          "Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30, "Ti": 2.0 ** 40}
_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12}
_NUMBER = r"([0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?)"
_DOCTYPE = re.compile(r'<!DOCTYPE\s+platform\s+SYSTEM\s+"https?://simgrid\.org/simgrid\.dtd"\s*>')


def _quantity(text: str | None, what: str, source: str, kind: str) -> float:
    """A SimGrid number with unit: kind "speed" (f, flops), "bw" (Bps, bps), "lat" (s)."""
    if text is None:
        raise ValueError(f"{source}: the cluster has no {what}")
    s = text.strip()
    if kind == "lat":
        m = re.fullmatch(_NUMBER + r"(s|ms|us|ns|ps)?", s)
        value = float(m.group(1)) * _TIME_UNITS[m.group(2) or "s"] if m else None
    else:
        suffix = {"speed": r"(f|flops)", "bw": r"(Bps|bps)"}[kind]
        m = re.fullmatch(_NUMBER + r"(k|K|M|G|T|P|Ki|Mi|Gi|Ti)?" + suffix, s)
        value = None
        if m:
            value = float(m.group(1)) * _UNITS[m.group(2) or ""]
            if kind == "bw" and m.group(3) == "bps":
                value /= 8.0
    if value is None or not math.isfinite(value) or value <= 0:
        example = {"lat": "time (e.g. 0.5us)", "speed": "speed (e.g. 1Gf)",
                   "bw": "bandwidth (e.g. 12.5GBps)"}[kind]
        raise ValueError(f"{source}: {what}={text!r} is not a positive {example}")
    return value


def _count(text: str | None, what: str, source: str) -> int:
    if text is None or not re.fullmatch(r"[0-9]+", text.strip()) or int(text) < 1:
        raise ValueError(f"{source}: {what}={text!r} is not a positive integer")
    return int(text)


def load_platform(name_or_path: str | Path) -> Platform:
    """A shipped platform by name (host, cluster, gpu) or a SimGrid platform file: one
    <cluster> (radical, speed, core, lat, bw, loopback_lat, loopback_bw; FAT_TREE
    topology optional). Parsed as data: no entities, no DOCTYPE but SimGrid's."""
    s = str(name_or_path)
    path = PLATFORM_DIR / f"{s}.xml" if s in PLATFORMS else Path(s)
    source = str(path)
    try:
        if path.stat().st_size > _MAX_FILE:
            raise ValueError(f"{source}: larger than {_MAX_FILE} bytes; not a platform file")
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"platform {s!r}: cannot read {source} ({e.strerror or e}); use one "
                         f"of {', '.join(PLATFORMS)} or a SimGrid platform file") from None
    except UnicodeDecodeError:
        raise ValueError(f"{source}: not UTF-8 text; not a platform file") from None
    stripped = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    if "<!ENTITY" in stripped or "<!ELEMENT" in stripped or "<!ATTLIST" in stripped:
        raise ValueError(f"{source}: declares entities or a DTD; platform files are read as "
                         f"plain data")
    doctypes = re.findall(r"<!DOCTYPE[^>]*>", stripped)
    if len(doctypes) > 1 or (doctypes and not _DOCTYPE.fullmatch(doctypes[0])):
        raise ValueError(f"{source}: only the standard DOCTYPE <!DOCTYPE platform SYSTEM "
                         f"\"https://simgrid.org/simgrid.dtd\"> is accepted, got "
                         f"{doctypes[0][:80]!r}")
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError(f"{source}: not well-formed XML ({e})") from None
    if root.tag != "platform":
        raise ValueError(f"{source}: the root element is <{root.tag}>, not <platform>")
    clusters = root.findall(".//cluster")
    if len(clusters) != 1:
        raise ValueError(f"{source}: the planner reads platforms of exactly one <cluster>, "
                         f"found {len(clusters)}")
    c = clusters[0].attrib
    radical = c.get("radical", "")
    numbers: list[int] = []
    for part in radical.split(","):
        m = re.fullmatch(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise ValueError(f"{source}: radical={radical!r} is not a list of host numbers "
                             f"or ranges (e.g. 0-63)")
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) else first
        if len(numbers) + last - first + 1 > _MAX_HOSTS:
            raise ValueError(f"{source}: radical={radical!r} names more than {_MAX_HOSTS} "
                             f"hosts")
        numbers.extend(range(first, last + 1))
    hosts = len(numbers)
    names = tuple(f"{c.get('prefix', '')}{k}{c.get('suffix', '')}" for k in numbers)
    cores = _count(c.get("core", "1"), "core", source)
    speed = _quantity(c.get("speed"), "speed", source, "speed") / 1e9
    lat = _quantity(c.get("lat"), "lat", source, "lat")
    bw = _quantity(c.get("bw"), "bw", source, "bw")
    lb_lat = _quantity(c.get("loopback_lat", c.get("lat")), "loopback_lat", source, "lat")
    lb_bw = _quantity(c.get("loopback_bw", c.get("bw")), "loopback_bw", source, "bw")
    per_leaf = 0
    topology = c.get("topology", "FLAT").upper()
    if topology == "FAT_TREE":
        params = c.get("topo_parameters", "")
        m = re.fullmatch(r"\s*2\s*;\s*([0-9]+)\s*,\s*([0-9]+)\s*;\s*([0-9]+)\s*,\s*([0-9]+)"
                         r"\s*;\s*([0-9]+)\s*,\s*([0-9]+)\s*", params)
        if not m or int(m.group(1)) < 1:
            raise ValueError(f"{source}: topo_parameters={params!r}: the planner reads "
                             f"two-level fat trees \"2;down1,down2;up1,up2;par1,par2\"")
        per_leaf = int(m.group(1))
    elif topology not in ("FLAT",):
        raise ValueError(f"{source}: topology={topology!r} is not modelled (FLAT or FAT_TREE)")
    name = path.stem if s in PLATFORMS else s
    return Platform(name=name, hosts=hosts, cores_per_host=cores, speed=speed,
                    link_latency=lat, link_bandwidth=bw, loopback_latency=lb_lat,
                    loopback_bandwidth=lb_bw, hosts_per_leaf=per_leaf, host_names=names)
