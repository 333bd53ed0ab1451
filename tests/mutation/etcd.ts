/**
 * The etcd a mutation run starts once for an area whose tests need one: a
 * single member on free loopback ports, its data in a temporary folder,
 * removed when it stops.
 *
 * @module
 */

/** A port free on loopback now. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Runs `body` with the client URL of a running etcd, stopped afterwards. */
export async function withEtcd<T>(
  body: (endpoint: string) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir({
    dir: "/tmp",
    prefix: "crr-mutation-etcd-",
  });
  const client = `http://127.0.0.1:${freePort()}`;
  const peer = `http://127.0.0.1:${freePort()}`;
  const etcd = new Deno.Command("etcd", {
    args: [
      "--name=m",
      `--data-dir=${dir}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=m=${peer}`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await healthy(client);
    return await body(client);
  } finally {
    etcd.kill("SIGKILL");
    await etcd.status;
    await Deno.remove(dir, { recursive: true });
  }
}

/** Resolves once etcd at `endpoint` answers as healthy; fails after 15 s. */
async function healthy(endpoint: string): Promise<void> {
  for (let tries = 0; tries < 60; tries++) {
    const { success } = await new Deno.Command("etcdctl", {
      args: [`--endpoints=${endpoint}`, "endpoint", "health"],
      stdout: "null",
      stderr: "null",
    }).output();
    if (success) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`etcd at ${endpoint} is not healthy after 15 s`);
}
