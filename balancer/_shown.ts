/**
 * Internal: a config value as the policies' errors show it.
 *
 * @module
 */

/**
 * `value` as JSON, except numbers JSON has no word for (`Infinity`, `NaN`),
 * and values it cannot write (`undefined`), which show as JavaScript writes
 * them.
 */
export function shown(value: unknown): string {
  return typeof value === "number"
    ? String(value)
    : JSON.stringify(value) ?? String(value);
}
