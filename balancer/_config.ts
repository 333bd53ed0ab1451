/**
 * Internal: what the policies' configs share: reading their entry of a
 * `loadBalancingConfig` list, and showing a bad value in an error.
 *
 * @module
 */

/**
 * `json`, a policy's config entry, as an object to read fields from.
 *
 * @throws {Error} if it is not a JSON object.
 */
export function configObject(json: unknown): Record<string, unknown> {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new Error(`config must be a JSON object, got ${shown(json)}`);
  }
  return json as Record<string, unknown>;
}

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
