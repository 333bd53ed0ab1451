/**
 * A Stryker ignorer: no mutants in trace lines. What a `GRPC_TRACE` line says
 * is for a reader, not behaviour a test could or should pin down.
 *
 * @module
 */

// Babel's NodePath, as far as this ignorer reads it.
interface Path {
  node: Node;
}
interface Node {
  type: string;
  expression?: Node;
  callee?: Node;
  property?: Node;
  name?: string;
  id?: Node | null;
  key?: Node;
  body?: Node;
}

function isTraceCall(node: Node | undefined): boolean {
  if (node?.type !== "CallExpression") return false;
  const callee = node.callee!;
  const name = callee.type === "Identifier"
    ? callee.name
    : callee.type === "MemberExpression"
    ? callee.property?.name ?? callee.property?.id?.name
    : undefined;
  return name === "trace";
}

function shouldIgnore({ node }: Path): string | undefined {
  const traces = (node.type === "ExpressionStatement" &&
    isTraceCall(node.expression)) ||
    (node.type === "ArrowFunctionExpression" && isTraceCall(node.body)) ||
    (node.type === "FunctionDeclaration" && node.id?.name === "trace") ||
    (node.type === "ClassPrivateMethod" && node.key?.id?.name === "trace");
  return traces ? "a trace line is for a reader, not behaviour" : undefined;
}

/** Stryker's plugin list: the ignorer `trace`, named in the config. */
export const strykerPlugins = [
  { kind: "Ignore", name: "trace", value: { shouldIgnore } },
];
