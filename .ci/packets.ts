/**
 * Runs the test suite under an nftables counter of every packet that leaves
 * through the default route's interface, and prints the count: the check
 * that no test sends a packet off the machine. It needs root and `nft`;
 * without them it says so and runs nothing.
 *
 * ```sh
 * deno task test:packets          # the whole suite
 * deno task test:packets dns      # the tests whose names match "dns"
 * ```
 *
 * @module
 */
import { run as runIn } from "../npm/projects.ts";

const TABLE = "crr_packets";
const run = (command: string, args: string[]) => runIn(command, args, ".");
if (Deno.uid() !== 0) {
  console.log("test:packets: needs root, to add an nftables counter");
  Deno.exit(1);
}
try {
  await run("nft", ["--version"]);
} catch {
  console.log("test:packets: needs nft (Debian: apt-get install nftables)");
  Deno.exit(1);
}
const device = (await run("ip", ["route", "show", "default"]))
  .match(/ dev (\S+)/)?.[1];
if (device === undefined) {
  console.log("test:packets: no default route, so nothing could leave");
  Deno.exit(1);
}

await run("nft", ["add", "table", "inet", TABLE]);
let code = 1;
try {
  await run(
    "nft",
    [
      "add chain inet",
      TABLE,
      "out { type filter hook output priority 0 ; }",
    ].join(" ").split(" "),
  );
  await run("nft", [
    "add",
    "rule",
    "inet",
    TABLE,
    "out",
    "oifname",
    device,
    "counter",
  ]);
  const filter = Deno.args[0];
  ({ code } = await new Deno.Command("deno", {
    args: ["task", "test", ...(filter ? ["--filter", filter] : [])],
    stdout: "inherit",
    stderr: "inherit",
  }).output());
  const listed = await run("nft", ["list", "table", "inet", TABLE]);
  const packets = Number(listed.match(/counter packets (\d+)/)?.[1]);
  console.log(
    `test:packets: ${packets} packets left through ${device} during the tests`,
  );
  if (packets !== 0) code = 1;
} finally {
  await run("nft", ["delete", "table", "inet", TABLE]);
}
Deno.exit(code);
