/**
 * The layout's counts: the `.ts` files at the root, the lines of the two
 * programs, the longest functions outside `tests/`, and imports that run
 * the wrong way between folders. Exits 1 if any is over its limit.
 *
 * ```sh
 * deno task layout
 * ```
 *
 * The functions and imports come from `deno lint` with the layout plugin
 * (`.ci/layout_lint.ts`), told to report every function's length.
 *
 * @module
 */
import { MAX_FUNCTION_LINES } from "./layout_lint.ts";

const ROOT = new URL("..", import.meta.url);

/** The most lines each program may have. */
const PROGRAM_LINES: Record<string, number> = {
  "client.ts": 200,
  "server.ts": 150,
};
const ROOT_PROGRAMS = ["client.ts", "demo.ts", "server.ts"];

interface Diagnostic {
  readonly filename: string;
  readonly code: string;
  readonly message: string;
  readonly range: { readonly start: { readonly line: number } };
}

/** The layout plugin's diagnostics over the whole tree. */
async function layoutDiagnostics(): Promise<Diagnostic[]> {
  const { stdout } = await new Deno.Command("deno", {
    args: ["lint", "--json", ".", ".ci"],
    cwd: ROOT,
    env: { LAYOUT_REPORT: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "null",
  }).output();
  const { diagnostics } = JSON.parse(new TextDecoder().decode(stdout)) as {
    diagnostics: Diagnostic[];
  };
  return diagnostics.filter(({ code }) => code.startsWith("layout/"));
}

function relative(filename: string): string {
  return filename.slice(ROOT.href.length);
}

const problems: string[] = [];

const rootFiles = [...Deno.readDirSync(ROOT)]
  .filter(({ isFile, name }) => isFile && name.endsWith(".ts"))
  .map(({ name }) => name).sort();
console.log(`root .ts files: ${rootFiles.length} (${rootFiles.join(", ")})`);
if (rootFiles.join() !== ROOT_PROGRAMS.join()) {
  problems.push(`the root holds ${rootFiles}, not ${ROOT_PROGRAMS}`);
}

for (const [program, most] of Object.entries(PROGRAM_LINES)) {
  const text = await Deno.readTextFile(new URL(program, ROOT));
  const lines = text.split("\n").length - 1;
  console.log(`${program}: ${lines} lines (at most ${most})`);
  if (lines > most) problems.push(`${program} has ${lines} lines`);
}

const diagnostics = await layoutDiagnostics();
const functions = diagnostics
  .filter(({ code }) => code === "layout/function-length")
  .map(({ filename, message, range }) => {
    const [lines, name] = message.split(" ");
    const where = `${relative(filename)}:${range.start.line}`;
    return { lines: Number(lines), name, where };
  })
  .sort((a, b) => b.lines - a.lines);
console.log(
  `longest functions outside tests/ (at most ${MAX_FUNCTION_LINES} lines):`,
);
for (const { lines, name, where } of functions.slice(0, 5)) {
  console.log(`  ${String(lines).padStart(3)}  ${name} (${where})`);
}
const tooLong = functions.filter(({ lines }) => lines > MAX_FUNCTION_LINES);
if (tooLong.length > 0) {
  problems.push(`${tooLong.length} functions over ${MAX_FUNCTION_LINES} lines`);
}

const wrongWay = diagnostics.filter(({ code }) =>
  code === "layout/import-direction"
);
console.log(`imports that run the wrong way: ${wrongWay.length}`);
for (const { filename, message } of wrongWay) {
  console.log(`  ${relative(filename)}: ${message}`);
  problems.push(message);
}

if (problems.length > 0) {
  console.log(`layout: ${problems.length} problems`);
  Deno.exit(1);
}
