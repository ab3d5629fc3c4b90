"""wrk as the load generator: a C client that costs the server far less CPU than a Python one.

`run_wrk(url, bodies, headers, ...)` writes the bodies to files and a Lua script that pre-formats one
request per body (cycled per connection), runs `wrk --latency`, and parses its summary into
`WrkResult`: requests/s, latency percentiles, non-2xx answers and socket errors. wrk is a Debian
package (`apt-get install -y wrk`); it is no project dependency.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_LUA = """\
local bodies = {%(bodies)s}
local headers = {%(headers)s}
local requests = {}
local counter = 0
init = function(args)
  for i, path in ipairs(bodies) do
    local f = assert(io.open(path, "rb"))
    local body = f:read("*a")
    f:close()
    requests[i] = wrk.format("%(method)s", "%(path)s", headers, body)
  end
  counter = math.random(#requests) - 1
end
request = function()
  counter = counter + 1
  return requests[(counter %% #requests) + 1]
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non_2xx: int
    socket_errors: int  # connect + read + write + timeout
    timeouts: int
    raw: str

    @property
    def good_per_s(self) -> float:
        """2xx answers per second (wrk's requests/s counts every answer, 4xx and 5xx too)."""
        if not self.requests:
            return 0.0
        return self.requests_per_s * max(0, self.requests - self.non_2xx) / self.requests


def wrk_binary() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit("wrk not found: apt-get install -y --no-install-recommends wrk")
    return path


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse(output: str) -> WrkResult:
    def number(pattern: str, default: float = 0.0) -> float:
        match = re.search(pattern, output)
        return float(match.group(1)) if match else default

    percentiles = dict(re.findall(r"^\s+(50|90|99)(?:\.000)?%\s+(\S+)", output, re.MULTILINE))
    latency = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", output, re.MULTILINE)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    socket_errors = sum(int(g) for g in errors.groups()) if errors else 0
    return WrkResult(
        requests_per_s=number(r"Requests/sec:\s+([\d.]+)"),
        requests=int(number(r"(\d+) requests in")),
        p50_ms=_ms(percentiles.get("50", "nan")),
        p90_ms=_ms(percentiles.get("90", "nan")),
        p99_ms=_ms(percentiles.get("99", "nan")),
        max_ms=_ms(latency.group(3)) if latency else float("nan"),
        non_2xx=int(number(r"Non-2xx or 3xx responses: (\d+)")),
        socket_errors=socket_errors,
        timeouts=int(errors.group(4)) if errors else 0,
        raw=output,
    )


def start_wrk(
    url: str,
    bodies: list[bytes],
    headers: dict[str, str],
    *,
    duration: float,
    connections: int,
    threads: int = 1,
    timeout: float = 10.0,
    method: str = "POST",
    workdir: Path | None = None,
) -> subprocess.Popen[str]:
    """Start wrk in the background; `finish_wrk` waits for it and parses its output."""
    workdir = Path(tempfile.mkdtemp(prefix="wrk-", dir=workdir))
    paths = []
    for i, body in enumerate(bodies):
        path = workdir / f"body-{i}"
        path.write_bytes(body)
        paths.append(path)
    path_part = url.split("://", 1)[1]
    path_part = "/" + path_part.split("/", 1)[1] if "/" in path_part else "/"
    lua = _LUA % {
        "bodies": ", ".join(f'"{p}"' for p in paths),
        "headers": ", ".join(f'["{k}"] = "{v}"' for k, v in headers.items()),
        "method": method,
        "path": path_part,
    }
    script = workdir / "post.lua"
    script.write_text(lua)
    command = [wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    command += ["--latency", f"--timeout={max(1, round(timeout))}s", "-s", str(script), url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish_wrk(process: subprocess.Popen[str]) -> WrkResult:
    output, _ = process.communicate()
    return parse(output)


def run_wrk(url: str, bodies: list[bytes], headers: dict[str, str], **kwargs: object) -> WrkResult:
    return finish_wrk(start_wrk(url, bodies, headers, **kwargs))  # type: ignore[arg-type]
