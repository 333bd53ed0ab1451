/**
 * `deno doc --lint` of the public API, less one false report: Deno 2.9.3
 * calls every type of another package private (denoland/deno#27364), so a
 * `private-type-ref` whose referenced type is declared outside `balancer/`
 * (grpc-js's `Picker`, `ChannelOptions`, …) is dropped. Everything else,
 * a missing JSDoc or a reference to a type of our own that is not exported,
 * still fails.
 *
 * ```sh
 * deno run --allow-read=balancer --allow-run=deno .ci/doc_lint.ts balancer/mod.ts
 * ```
 *
 * @module
 */
const [module] = Deno.args;
const { stderr } = await new Deno.Command("deno", {
  args: ["doc", "-q", "--lint", module],
  env: { NO_COLOR: "1" },
  stdout: "null",
  stderr: "piped",
}).output();
const ours = [...Deno.readDirSync("balancer")]
  .filter(({ name }) => name.endsWith(".ts"))
  .map(({ name }) => Deno.readTextFileSync(`balancer/${name}`))
  .join("\n");

/** The declaration line a `private-type-ref` report points at. */
function referenced(report: string): string | undefined {
  const lines = report.split("\n");
  const marker = lines.findIndex((line) =>
    line.includes("this is the referenced type")
  );
  return lines[marker - 1]?.replace(/^\s*\d+ \| /, "");
}

const reports = new TextDecoder().decode(stderr)
  .split(/\n(?=error)/)
  .filter((report) => report.startsWith("error["))
  .filter((report) => {
    if (!report.startsWith("error[private-type-ref]")) return true;
    const declaration = referenced(report);
    return declaration === undefined || ours.includes(declaration);
  });
for (const report of reports) console.error(report.trim() + "\n");
if (reports.length > 0) {
  console.error(`doc lint: ${module} fails with ${reports.length} report(s)`);
  Deno.exit(1);
}
