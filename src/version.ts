/** The server's version, as package.json states it (recorded in provenance records, reported by GET /v2). */
export const aiaasVersion = '0.1.0';
