/**
 * Where a model pull may download from (SSRF defence). A pull makes the server fetch a URL a
 * tenant chose, so without these checks a tenant could read the cloud metadata service, an admin
 * panel on localhost or anything else on the server's private network. The checks apply to the
 * host name (the operator's allow-list) and to EVERY address it resolves to, on the first request
 * and on every redirect; the downloader then connects to exactly the address it checked.
 */
import { BlockList, isIP } from 'node:net';
import { AiaasError } from '../errors.ts';

export interface PullPolicy {
  /** Lowercase host names, IP literals or `*.domain` suffixes; empty: any host whose addresses are all public. */
  readonly allowedHosts: readonly string[];
  /** Reach special addresses of unlisted hosts too (development, or a private mirror by IP range). */
  readonly allowPrivate: boolean;
  readonly maxRedirects: number;
}

/**
 * Address ranges that are not the public internet (IANA special-purpose registries): unspecified,
 * "this network", private, shared (CGNAT), loopback, link-local (cloud metadata at 169.254.169.254),
 * IETF protocol assignments, documentation, benchmarking, multicast, reserved and broadcast; for
 * IPv6 also unique-local, site-local, link-local, multicast, discard, documentation, NAT64 and
 * 6to4 / Teredo, which embed IPv4 addresses. IPv4-mapped IPv6 is unwrapped before the check.
 */
const specialAddresses = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  specialAddresses.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['64:ff9b:1::', 48],
  ['100::', 64],
  ['2001::', 23],
  ['2001:db8::', 32],
  ['2002::', 16],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
] as const) {
  specialAddresses.addSubnet(network, prefix, 'ipv6');
}

/** `::ffff:127.0.0.1` (and its hex form) is the IPv4 address in disguise. */
function unwrapMappedIpv4(address: string): string {
  const lower = address.toLowerCase();
  const dotted = /^(?:0{0,4}:){0,5}:?ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (dotted?.[1] !== undefined) return dotted[1];
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(lower);
  if (hex?.[1] !== undefined && hex[2] !== undefined) {
    const high = Number.parseInt(hex[1], 16);
    const low = Number.parseInt(hex[2], 16);
    return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  }
  return address;
}

/** True for any address that is not plainly on the public internet (or is not an IP address at all). */
export function isSpecialAddress(address: string): boolean {
  const unwrapped = unwrapMappedIpv4(address);
  const family = isIP(unwrapped);
  if (family === 0) return true;
  return specialAddresses.check(unwrapped, family === 4 ? 'ipv4' : 'ipv6');
}

/** The host as written in a URL, lowercase, without IPv6 brackets or a trailing dot. */
export function normalizeHost(hostname: string): string {
  return hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1').replace(/\.$/, '');
}

export function hostListed(policy: PullPolicy, hostname: string): boolean {
  const host = normalizeHost(hostname);
  return policy.allowedHosts.some((entry) => (entry.startsWith('*.') ? host.endsWith(entry.slice(1)) && host.length > entry.length - 1 : entry === host));
}

function refused(url: URL, reason: 'scheme' | 'host-not-allowed' | 'private-address', message: string, address?: string): AiaasError {
  return new AiaasError('PULL_SOURCE_REFUSED', message, {
    details: { host: url.hostname, reason, ...(address === undefined ? {} : { address }) },
  });
}

/** http or https, without credentials in the URL. */
export function checkScheme(url: URL): void {
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw refused(url, 'scheme', `pulls download over http or https only, not ${url.protocol}`);
  if (url.username !== '' || url.password !== '') throw refused(url, 'scheme', 'pull URLs must not carry credentials');
}

/** What can be checked without DNS: the scheme, the allow-list, and a host that is an IP literal. */
export function checkUrl(policy: PullPolicy, url: URL): void {
  checkScheme(url);
  const host = normalizeHost(url.hostname);
  // The address first: it names the more specific danger.
  if (isIP(host) !== 0) checkAddresses(policy, url, [host]);
  if (policy.allowedHosts.length > 0 && !hostListed(policy, host)) {
    throw refused(url, 'host-not-allowed', `host ${host} is not in this server's pull allow-list (pullAllowedHosts)`);
  }
}

/**
 * Every address the host resolved to must be public, unless the operator listed the host or
 * allowed private addresses: one private answer among public ones is how DNS rebinding starts.
 */
export function checkAddresses(policy: PullPolicy, url: URL, addresses: readonly string[]): void {
  if (addresses.length === 0) throw new AiaasError('PULL_FAILED', `host ${url.hostname} has no address`, { details: { host: url.hostname } });
  if (policy.allowPrivate || hostListed(policy, url.hostname)) return;
  const special = addresses.find(isSpecialAddress);
  if (special !== undefined) {
    throw refused(
      url,
      'private-address',
      `host ${normalizeHost(url.hostname)} resolves to ${special}, a private, loopback, link-local or otherwise special address; pulls from it need the host in pullAllowedHosts or pullAllowPrivate`,
      special,
    );
  }
}
