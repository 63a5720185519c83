import * as fs from "node:fs";
import * as net from "node:net";

/** The kernel's range for the local ports of outgoing connections (and of `listen(0)`). */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo) return [lo, hi];
  } catch {
    // not Linux: the IANA range
  }
  return [49152, 65535];
}

const handedOut = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral range: a server
 * started on it later cannot find it taken by the local end of some outgoing connection made
 * meanwhile (a port from `listen(0)` can be, and PgBouncer then keeps running without its TCP
 * listener).
 */
export async function freePort(): Promise<number> {
  const [lo] = ephemeralRange();
  const first = 10_000;
  if (lo - first > 1_000) {
    for (let i = 0; i < 100; i++) {
      const port = first + Math.floor(Math.random() * (lo - first));
      if (handedOut.has(port) || !(await bindable(port))) continue;
      handedOut.add(port);
      return port;
    }
  }
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
