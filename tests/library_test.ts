/**
 * docs/library.md's Deno set-up as written: `balancer/` copied alone beside a
 * project whose `deno.json` is the page's, and the policies run from it, with
 * the npm packages from Deno's cache: nothing is fetched.
 */
import assert from "node:assert/strict";

const ROOT = new URL("..", import.meta.url);

/** The page's first JSON block: the project's `deno.json`. */
async function documentedConfig(): Promise<string> {
  const page = await Deno.readTextFile(new URL("docs/library.md", ROOT));
  const json = page.match(/```json\n([\s\S]*?)```/)?.[1];
  assert.ok(json, "a JSON block in docs/library.md");
  return json;
}

/** Copies the `.ts` files of `from` into `to`, folders included. */
async function copyTree(from: URL, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (entry.isDirectory) {
      await copyTree(new URL(`${entry.name}/`, from), `${to}/${entry.name}`);
    } else if (entry.name.endsWith(".ts")) {
      await Deno.copyFile(new URL(entry.name, from), `${to}/${entry.name}`);
    }
  }
}

const PROGRAM = `
import {
  checkServiceConfig,
  registerCustomRoundRobin,
  registerLeastRequest,
  registerRingHash,
} from "@customlb/custom-round-robin";
registerCustomRoundRobin();
registerLeastRequest();
registerRingHash();
checkServiceConfig({
  loadBalancingConfig: [{ ring_hash_experimental: { requestHashHeader: "x-user" } }],
});
checkServiceConfig({ loadBalancingConfig: [{ custom_round_robin: {} }] });
console.log("policies registered and checked");
`;

Deno.test("library: balancer/ copied alone runs with library.md's import map, as written", async () => {
  const dir = await Deno.makeTempDir({ dir: "/tmp" });
  try {
    await copyTree(
      new URL("balancer/", ROOT),
      `${dir}/custom-round-robin/balancer`,
    );
    await Deno.mkdir(`${dir}/project`);
    await Deno.writeTextFile(
      `${dir}/project/deno.json`,
      await documentedConfig(),
    );
    await Deno.writeTextFile(`${dir}/project/main.ts`, PROGRAM);
    const { code, stdout, stderr } = await new Deno.Command("deno", {
      args: [
        "run",
        "-q",
        "--cached-only",
        "--allow-read=.,../custom-round-robin/balancer",
        "--allow-sys=uid,gid",
        "--allow-env=GRPC_*,grpc_proxy,https_proxy,http_proxy,no_grpc_proxy,no_proxy",
        "main.ts",
      ],
      cwd: `${dir}/project`,
      env: { DENO_NO_UPDATE_CHECK: "1" },
    }).output();
    const text = new TextDecoder();
    assert.equal(code, 0, text.decode(stderr));
    assert.equal(text.decode(stdout), "policies registered and checked\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
