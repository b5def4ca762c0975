import type { Classification, UnknownReason } from './classify.js';
import type { Verdict } from './exit-codes.js';
import type { ObjectName } from './object-key.js';

/** One row of the report: how many objects of a resource one provider, config name and key id cover. */
export interface AuditGroup {
  resource: string;
  provider: Classification['provider'];
  /** Plaintext only: how kube-apiserver serialised the object. */
  encoding?: 'protobuf' | 'json';
  /** Unknown only: why the value was not recognised. */
  reason?: UnknownReason;
  /** The provider's name in the EncryptionConfiguration (from the value's prefix). */
  configName?: string;
  /** KMS v2 only: the key id the object was encrypted under. */
  keyId?: string;
  count: number;
}

/** An object that needs attention, named by its etcd key: never its value. */
export interface FlaggedObject extends ObjectName {
  resource: string;
  provider: Classification['provider'];
  encoding?: 'protobuf' | 'json';
  reason?: UnknownReason;
  configName?: string;
  keyId?: string;
}

/**
 * Counts classifications as pages arrive. It holds counts and the names of flagged objects only;
 * values are classified and dropped by the caller page by page.
 */
export class AuditTally {
  private readonly groups = new Map<string, AuditGroup>();
  readonly objectsByResource = new Map<string, number>();
  readonly plaintext: FlaggedObject[] = [];
  readonly unknown: FlaggedObject[] = [];
  /** With an expected key id: encrypted objects under anything else (they need a rewrite too). */
  readonly otherKey: FlaggedObject[] = [];

  constructor(private readonly expectKeyId: string | undefined) {}

  add(resource: string, name: ObjectName, classification: Classification): void {
    this.objectsByResource.set(resource, (this.objectsByResource.get(resource) ?? 0) + 1);
    const detail = details(classification);
    const groupKey = JSON.stringify([resource, classification.provider, detail.encoding, detail.reason, detail.configName, detail.keyId]);
    const group = this.groups.get(groupKey);
    if (group) group.count += 1;
    else this.groups.set(groupKey, { resource, provider: classification.provider, ...detail, count: 1 });

    const flagged: FlaggedObject = { resource, ...name, provider: classification.provider, ...detail };
    if (classification.provider === 'identity') this.plaintext.push(flagged);
    else if (classification.provider === 'unknown') this.unknown.push(flagged);
    else if (this.expectKeyId !== undefined && !(classification.provider === 'kms-v2' && classification.keyId === this.expectKeyId)) this.otherKey.push(flagged);
  }

  /** Rows in a stable order: by resource, then provider, config name and key id. */
  rows(): AuditGroup[] {
    const order = (g: AuditGroup): string => [g.resource, g.provider, g.encoding ?? '', g.reason ?? '', g.configName ?? '', g.keyId ?? ''].join('\0');
    return [...this.groups.values()].sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
  }

  get total(): number {
    let sum = 0;
    for (const n of this.objectsByResource.values()) sum += n;
    return sum;
  }

  verdict(): Verdict {
    if (this.plaintext.length > 0) return 'plaintext';
    if (this.unknown.length > 0) return 'unknown';
    if (this.otherKey.length > 0) return 'otherKey';
    return 'clean';
  }
}

function details(c: Classification): Pick<AuditGroup, 'encoding' | 'reason' | 'configName' | 'keyId'> {
  switch (c.provider) {
    case 'identity':
      return { encoding: c.encoding };
    case 'unknown':
      return { reason: c.reason };
    case 'kms-v2':
      return { configName: c.configName, keyId: c.keyId };
    default:
      return { configName: c.configName };
  }
}
