/**
 * A `deno lint` plugin that keeps the layout README's tree describes:
 *
 * - `layout/function-length`: no function or method outside `tests/` is
 *   longer than {@linkcode MAX_FUNCTION_LINES} lines;
 * - `layout/import-direction`: folders depend one way (see
 *   {@linkcode ALLOWED}): nothing in the product imports test support,
 *   tests or benchmarks, and tests never import benchmarks.
 *
 * With `LAYOUT_REPORT=1` in the environment, the first rule reports every
 * function with its length instead, for `.ci/layout_report.ts`.
 *
 * @module
 */

/** The longest a function may be, in lines, outside `tests/`. */
export const MAX_FUNCTION_LINES = 60;

/**
 * What each folder may import, by its first path segment; `.` is the
 * programs at the root. The product is `.`, `balancer`, `echo` and `cli`.
 */
export const ALLOWED: Record<string, readonly string[]> = {
  balancer: ["balancer"],
  echo: ["echo"],
  cli: ["cli", "balancer", "echo"],
  ".": [".", "cli", "balancer", "echo"],
  testing: ["testing", ".", "cli", "balancer", "echo"],
  tests: ["tests", "testing", ".", "cli", "balancer", "echo"],
  npm: ["npm", "testing", ".", "cli", "balancer", "echo"],
  bench: ["bench", "npm", "testing", ".", "cli", "balancer", "echo"],
  compat: ["compat"],
  ".ci": [".ci", "npm", "testing", ".", "cli", "balancer", "echo"],
};

const ROOT = new URL("..", import.meta.url).pathname;

/** The folder of `path` (absolute), by its first segment under the root. */
export function folderOf(path: string): string | null {
  if (!path.startsWith(ROOT)) return null;
  const segments = path.slice(ROOT.length).split("/");
  return segments.length === 1 ? "." : segments[0];
}

function resolve(from: string, specifier: string): string {
  return new URL(specifier, `file://${from}`).pathname;
}

type FunctionNode =
  | Deno.lint.FunctionDeclaration
  | Deno.lint.FunctionExpression
  | Deno.lint.ArrowFunctionExpression;

/** A function's name as a reader would look it up. */
function nameOf(node: FunctionNode): string {
  if (node.type === "FunctionDeclaration" && node.id) return node.id.name;
  const parent = node.parent;
  const key = parent.type === "MethodDefinition" || parent.type === "Property"
    ? parent.key
    : parent.type === "VariableDeclarator"
    ? parent.id
    : null;
  if (key?.type === "Identifier") return key.name;
  if (key?.type === "PrivateIdentifier") return `#${key.name}`;
  return "(anonymous)";
}

const plugin: Deno.lint.Plugin = {
  name: "layout",
  rules: {
    "function-length": {
      create(context) {
        const folder = folderOf(context.filename);
        if (folder === "tests") return {};
        const reportAll = Deno.env.get("LAYOUT_REPORT") === "1";
        const check = (node: FunctionNode) => {
          const [start, end] = node.range;
          const lines = context.sourceCode.text.slice(start, end)
            .split("\n").length;
          if (reportAll) {
            context.report({ node, message: `${lines} ${nameOf(node)}` });
          } else if (lines > MAX_FUNCTION_LINES) {
            context.report({
              node,
              message: `${
                nameOf(node)
              } is ${lines} lines long; at most ${MAX_FUNCTION_LINES} outside tests/`,
            });
          }
        };
        return {
          FunctionDeclaration: check,
          FunctionExpression: check,
          ArrowFunctionExpression: check,
        };
      },
    },
    "import-direction": {
      create(context) {
        const from = folderOf(context.filename);
        const allowed = from === null ? undefined : ALLOWED[from];
        if (allowed === undefined) return {};
        const check = (node: Deno.lint.Node, specifier: unknown) => {
          if (typeof specifier !== "string" || !specifier.startsWith(".")) {
            return;
          }
          const to = folderOf(resolve(context.filename, specifier));
          if (to !== null && !allowed.includes(to)) {
            context.report({
              node,
              message: `${from}/ may not import ${to}/ (${specifier})`,
            });
          }
        };
        return {
          ImportDeclaration: (node) => check(node, node.source.value),
          ExportNamedDeclaration: (node) => check(node, node.source?.value),
          ExportAllDeclaration: (node) => check(node, node.source.value),
          ImportExpression: (node) =>
            check(
              node,
              node.source.type === "Literal" ? node.source.value : null,
            ),
        };
      },
    },
  },
};

export default plugin;
