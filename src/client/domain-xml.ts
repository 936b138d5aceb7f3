// libvirt domain XML leases (formatdomain "Device leases"): what libvirt's sanlock plugin reads
// from a domain to acquire on behalf of the qemu process, as pure functions.
//
//   <domain>… <devices>
//     <lease>
//       <lockspace>LS</lockspace>          → sanlk_resource.lockspace_name (≤ 48 bytes)
//       <key>NAME</key>                    → sanlk_resource.name (≤ 48 bytes)
//       <target path='/p' offset='1048576'/> → disks[0] (path < 1024 bytes, offset default 0)
//     </lease>
//   </devices></domain>
//
// Names are JS (Unicode) strings here; the byte limits are checked on their UTF-8 encoding,
// which is what goes on the wire.
import assert from 'node:assert/strict';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { Errno, SanlockError } from '../codes.js';
import { NAME_LEN, PATH_LEN, type SanlkResource, emptyDisk, makeResource } from '../protocol/structs.js';

/** One lease: the fields of libvirt's <lease> element. */
export interface LeaseSpec {
  lockspace: string;
  key: string;
  path: string;
  offset: number;
}

export interface DomainLease extends LeaseSpec {
  /** 1-based position among the <lease> elements, as error messages name it */
  index: number;
}

export interface DomainLeases {
  /** <domain><name>, which libvirt's plugin passes to sanlock as the owner name */
  domainName?: string;
  leases: DomainLease[];
}

/** Malformed or unusable domain XML; code is -EINVAL as sanlock uses for a bad argument. */
export class DomainXmlError extends SanlockError {
  constructor(message: string) {
    super(-Errno.EINVAL, message);
    this.name = 'DomainXmlError';
  }
}

// Every element is parsed as an array so that a repeated <key>, <target> or <devices> is seen
// (and refused) instead of one silently winning. Values stay strings: a key like "12e5" or
// "0x10" must not become a number.
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  attributesGroupName: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  // libvirt takes the text as it is (XPath string()), so no trimming here either
  trimValues: false,
  // numeric character references (&#65;) are decoded only with htmlEntities
  htmlEntities: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (_name, _path, _leaf, isAttribute) => !isAttribute,
});

type Node = Record<string, unknown>;

function byteLen(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

function quote(s: string): string {
  return JSON.stringify(s);
}

/** Text content of an element parsed as [text] or [{ '#text': text, '@': attrs }]. */
function textOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    const t = (v as Node)['#text'];
    if (typeof t === 'string') return t;
    if (typeof t === 'number') return String(t);
    // an element with only attributes or children has no text
    return '';
  }
  return undefined;
}

function attrsOf(v: unknown): Record<string, string> {
  if (v && typeof v === 'object') {
    const a = (v as Node)['@'];
    if (a && typeof a === 'object') return a as Record<string, string>;
  }
  return {};
}

function childrenOf(v: unknown, name: string): unknown[] {
  if (!v || typeof v !== 'object') return [];
  const c = (v as Node)[name];
  return Array.isArray(c) ? c : [];
}

function checkSpace(what: string, where: string, s: string): void {
  if (s !== s.trim()) throw new DomainXmlError(`${where}: <${what}> ${quote(s)} has leading or trailing whitespace, which libvirt would pass to sanlock as part of it`);
}

function checkName(what: string, where: string, s: string): void {
  if (s === '') throw new DomainXmlError(`${where}: <${what}> is empty`);
  checkSpace(what, where, s);
  const n = byteLen(s);
  if (n > NAME_LEN) throw new DomainXmlError(`${where}: <${what}> ${quote(s)} is ${n} bytes, sanlock names hold at most ${NAME_LEN}`);
}

function checkPath(where: string, s: string): void {
  const n = byteLen(s);
  // sanlk_disk.path is char[1024] and the daemon forces path[1023] = 0
  if (n > PATH_LEN - 1) throw new DomainXmlError(`${where}: <target path> is ${n} bytes, sanlock paths hold at most ${PATH_LEN - 1} (a ${PATH_LEN}-byte field with its NUL)`);
  checkSpace('target path', where, s);
  if (!s.startsWith('/')) throw new DomainXmlError(`${where}: <target path> ${quote(s)} is not an absolute path`);
}

/** A decimal offset as libvirt reads it (unsigned, base 10), within JS's exact integers. */
function parseOffset(where: string, raw: string | undefined): number {
  if (raw === undefined) return 0;
  const s = raw.trim();
  if (!/^\d+$/.test(s)) throw new DomainXmlError(`${where}: <target offset> ${quote(raw)} is not a non-negative decimal number`);
  const v = Number(s);
  if (!Number.isSafeInteger(v)) throw new DomainXmlError(`${where}: <target offset> ${s} is too large`);
  return v;
}

function single(where: string, lease: unknown, name: string, what: string): unknown {
  const list = childrenOf(lease, name);
  if (list.length === 0) throw new DomainXmlError(`${where}: missing <${name}> (${what})`);
  if (list.length > 1) throw new DomainXmlError(`${where}: ${list.length} <${name}> elements, libvirt allows one`);
  return list[0];
}

/** Reads one parsed <lease> element; `index` is its 1-based position. */
function leaseOf(node: unknown, index: number): DomainLease {
  let where = `<lease> #${index}`;
  const keyText = textOf(single(where, node, 'key', 'the resource name'));
  const key = keyText ?? '';
  if (key) where += ` (key ${quote(key)})`;
  checkName('key', where, key);
  const lockspace = textOf(single(where, node, 'lockspace', 'the lockspace the key is held in')) ?? '';
  checkName('lockspace', where, lockspace);
  const target = single(where, node, 'target', "the lease file: <target path='…' offset='…'/>");
  const attrs = attrsOf(target);
  const path = attrs.path;
  if (path === undefined || path === '') throw new DomainXmlError(`${where}: <target> has no path attribute`);
  checkPath(where, path);
  const offset = parseOffset(where, attrs.offset);
  return { index, lockspace, key, path, offset };
}

/**
 * The leases of a libvirt domain XML document (every <devices><lease>), in document order. A
 * document whose root is a single <lease> (as `sanlock-ts lease-xml` prints) gives that lease.
 * Throws DomainXmlError (code -EINVAL) naming the element for anything sanlock could not take:
 * malformed XML, missing key/lockspace/target path, names over 48 bytes, paths over 1023 bytes,
 * a bad offset, or the same lockspace+key twice.
 */
export function parseDomainLeases(xml: string): DomainLeases {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) {
    const e = valid.err;
    throw new DomainXmlError(`malformed XML at line ${e.line}${e.col ? `, column ${e.col}` : ''}: ${e.msg}`);
  }
  let doc: Node;
  try {
    doc = parser.parse(xml) as Node;
  } catch (e) {
    throw new DomainXmlError(`malformed XML: ${(e as Error).message}`);
  }
  const roots = Object.keys(doc).filter((k) => k !== '#text');
  if (roots.length !== 1 || (doc[roots[0]!] as unknown[]).length !== 1) {
    throw new DomainXmlError(`malformed XML: expected one root element, found ${roots.map((r) => `<${r}>`).join(', ') || 'none'}`);
  }
  const rootName = roots[0]!;
  const root = (doc[rootName] as unknown[])[0];
  let leaseNodes: unknown[];
  let domainName: string | undefined;
  if (rootName === 'lease') {
    leaseNodes = [root];
  } else if (rootName === 'domain') {
    const names = childrenOf(root, 'name');
    if (names.length === 1) domainName = textOf(names[0]) || undefined;
    const devices = childrenOf(root, 'devices');
    if (devices.length > 1) throw new DomainXmlError(`<domain> has ${devices.length} <devices> elements, libvirt allows one`);
    leaseNodes = devices.length === 1 ? childrenOf(devices[0], 'lease') : [];
    if (leaseNodes.length === 0) throw new DomainXmlError('<domain> has no <devices><lease> element: nothing to acquire');
  } else {
    throw new DomainXmlError(`root element is <${rootName}>, expected <domain> (or a single <lease>)`);
  }
  const leases = leaseNodes.map((n, i) => leaseOf(n, i + 1));
  const seen = new Map<string, DomainLease>();
  for (const l of leases) {
    const id = `${l.lockspace}\0${l.key}`;
    const first = seen.get(id);
    if (first) {
      throw new DomainXmlError(`<lease> #${l.index} repeats lockspace ${quote(l.lockspace)} key ${quote(l.key)} of <lease> #${first.index}`);
    }
    seen.set(id, l);
  }
  return domainName === undefined ? { leases } : { domainName, leases };
}

/** latin1 byte string of a JS string's UTF-8 bytes: how names travel in the protocol structs. */
export function wireString(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

/** sanlk_resource structs (one disk each, exclusive, no lver) for the leases. */
export function leasesToResources(leases: readonly LeaseSpec[]): SanlkResource[] {
  return leases.map((l) => makeResource(wireString(l.lockspace), wireString(l.key), [emptyDisk(wireString(l.path), l.offset)]));
}

/** The owner name libvirt gives sanlock: the domain name, cut to 48 bytes on a UTF-8 boundary. */
export function ownerNameOf(domainName: string | undefined): string {
  if (!domainName) return '';
  let b = Buffer.from(domainName, 'utf8');
  if (b.length <= NAME_LEN) return b.toString('latin1');
  b = b.subarray(0, NAME_LEN);
  // drop a cut multi-byte sequence so the name stays valid UTF-8
  let end = b.length;
  while (end > 0 && (b[end - 1]! & 0xc0) === 0x80) end--;
  if (end > 0 && b[end - 1]! >= 0xc0) {
    const lead = b[end - 1]!;
    const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    if (b.length - (end - 1) < need) b = b.subarray(0, end - 1);
  }
  return b.toString('latin1');
}

function escapeXml(s: string, where: string): string {
  // XML 1.0 cannot carry these at all, not even as character references
  if (/[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]/.test(s)) throw new DomainXmlError(`${where} contains a control character that XML cannot represent`);
  return s.replace(/[&<>'"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/**
 * The <lease> element for a lease, laid out as libvirt formats it (lockspace, key, target with
 * single-quoted attributes, two-space indent), each line prefixed by `indent`; ends in "\n".
 * The same limits as the parser apply, so whatever this prints parses back to the same lease.
 */
export function formatLeaseXml(l: LeaseSpec, indent = ''): string {
  const where = `lease ${quote(l.lockspace)}:${quote(l.key)}`;
  checkName('lockspace', where, l.lockspace);
  checkName('key', where, l.key);
  if (l.path === '') throw new DomainXmlError(`${where}: empty path`);
  checkPath(where, l.path);
  assert.ok(Number.isSafeInteger(l.offset) && l.offset >= 0, `${where}: offset ${l.offset} is not a non-negative integer`);
  return (
    `${indent}<lease>\n` +
    `${indent}  <lockspace>${escapeXml(l.lockspace, `${where} lockspace`)}</lockspace>\n` +
    `${indent}  <key>${escapeXml(l.key, `${where} key`)}</key>\n` +
    `${indent}  <target path='${escapeXml(l.path, `${where} path`)}' offset='${l.offset}'/>\n` +
    `${indent}</lease>\n`
  );
}
